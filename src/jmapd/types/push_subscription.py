"""PushSubscription (RFC 8620 §7.2): a URL the server POSTs StateChanges to, once the client
has proved it reads what arrives there (the PushVerification's code). Push delivery itself is
push/webpush.py.

A subscription belongs to the user and to the credential that made it: /get and /set see only
those of the request's credential, and it is destroyed when that credential goes. Its `url`
and `keys` are never shown. Its expiry is bounded to `push_subscription_days` (and set to that
when the client gives none): Basic credentials and API tokens do not expire.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque
from typing import Any

from ..passwords import credential_id
from ..protocol.engine import DataType, Hooks, Property, register_type
from ..protocol.errors import SetError, invalid_properties
from ..protocol.registry import CORE, Context
from ..protocol.values import (
    OBJECT,
    STRING,
    UTC_DATE_KIND,
    ListOf,
    Nullable,
    utc_date,
    utc_seconds,
)
from ..push.webpush import TYPE, Refused, check_keys, check_url
from ..store.base import Transaction

MAX_URL = 2048
MAX_DEVICE_CLIENT_ID = 255


def bounded_expiry(ctx: Context, given: str | None) -> str:
    """The expiry the server keeps: the client's, bounded to push_subscription_days."""
    longest = time.time() + ctx.config.push_subscription_days * 86400
    if given is None:
        return utc_date(longest)
    when = utc_seconds(given)
    if when <= time.time():
        raise invalid_properties("expires is in the past", "expires")
    return given if when <= longest else utc_date(longest)


class CreationRate:
    """How many subscriptions each user made in the last hour, in this process (§8.7: the
    rate of creation is limited, so the PushVerification cannot be used to flood a host)."""

    def __init__(self) -> None:
        self._made: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, user: str, limit: int) -> bool:
        now = time.monotonic()
        with self._lock:
            made = self._made[user]
            while made and made[0] < now - 3600:
                made.popleft()
            if len(made) >= limit:
                return False
            made.append(now)
            return True


class PushSubscriptionHooks(Hooks):
    def __init__(self) -> None:
        self.rate = CreationRate()

    def visible(self, ctx: Context, record: dict[str, Any]) -> bool:
        return bool(record.get("_credential") == credential_id(*ctx.user.credential))

    def prepare(self, ctx: Context, account_id: str, given: dict[str, Any]) -> Any:
        """The URL's host is resolved before the write (it may take a while)."""
        url = given.get("url")
        if isinstance(url, str) and len(url) <= MAX_URL:
            try:
                check_url(url, ctx.config.push_allow_loopback)
            except Refused as e:
                raise invalid_properties(f"url {e}", "url") from None
        return None

    def create(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        problems = {}
        if len(record["url"]) > MAX_URL:
            problems["url"] = f"is longer than {MAX_URL} characters"
        if len(record["deviceClientId"]) > MAX_DEVICE_CLIENT_ID:
            problems["deviceClientId"] = f"is longer than {MAX_DEVICE_CLIENT_ID} characters"
        if record["verificationCode"] is not None:
            problems["verificationCode"] = "must be null when the subscription is made"
        wrong_keys = check_keys(record["keys"])
        if wrong_keys:
            problems["keys"] = wrong_keys
        if problems:
            raise invalid_properties("; ".join(f"{k} {v}" for k, v in problems.items()),
                                     *problems)  # fmt: skip
        record["expires"] = bounded_expiry(ctx, record["expires"])
        limit = ctx.config.max_push_subscriptions
        if len(txn.get(TYPE, None)) >= limit:
            raise SetError("overQuota", f"a user may have at most {limit} push subscriptions")
        if not self.rate.allow(ctx.user.account_id, limit):
            raise SetError("rateLimit", f"at most {limit} push subscriptions an hour")
        record["id"] = txn.new_id()
        record["_credential"] = credential_id(*ctx.user.credential)
        record["_code"] = secrets.token_hex(16)  # 128 bits: not to be guessed (§7.2.2)
        sender = ctx.services.get("webpush")
        if sender is not None:
            verify = (record["id"], record["url"], record["keys"], record["_code"])
            ctx.after_commit.append(lambda: sender.verify_soon(*verify))

    def update(self, ctx: Context, txn: Transaction, old: dict[str, Any],
               new: dict[str, Any]) -> None:  # fmt: skip
        code = new["verificationCode"]
        if code != old["verificationCode"] and code != old["_code"]:
            raise invalid_properties("verificationCode is not the code pushed to the url",
                                     "verificationCode")  # fmt: skip
        if new["expires"] != old["expires"]:
            new["expires"] = bounded_expiry(ctx, new["expires"])


register_type(
    DataType(
        TYPE,
        CORE,
        (
            Property("deviceClientId", STRING, immutable=True),
            Property("url", STRING, immutable=True),
            Property("keys", Nullable(OBJECT), default=None, immutable=True),
            Property("verificationCode", Nullable(STRING), default=None),
            Property("expires", Nullable(UTC_DATE_KIND), default=None),
            Property("types", Nullable(ListOf(STRING)), default=None),
        ),
        methods=("get", "set"),
        hooks=PushSubscriptionHooks(),
        per_user=True,
        private=("url", "keys"),
    )
)
