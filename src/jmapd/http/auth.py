"""HTTP Basic and Bearer authentication, with a short in-memory cache of verified credentials
(argon2 is slow on purpose; a client sends its credentials with every request).

Nobody without an account can spend the server's memory or CPU with logins: at most
`max_concurrent_hashing` argon2 checks run at once per worker (each takes 64 MiB) and at most
`max_login_queue` wait for one (more get 429); failed logins are counted per client address
and per username, and past a few the next attempts wait a growing back-off (429 with
Retry-After); a credential that just failed fails again at once, without hashing. Every failed
login is logged with its username and address, never its secret.

Browsers cannot send an Authorization header with an EventSource, an `<img src>` or a
WebSocket, so a client may trade its credential for a short-lived access token
(`POST /jmap/access-token`) and put it in the `access_token` query parameter of those three
URLs, and of no other. The token is signed with a key the store keeps for every node; it names
the account and the credential that issued it (a fingerprint of the password hash, or the API
token's hash) and its expiry, so it stops working when it expires or when that credential is
changed or revoked, like every request the credential made. The query string is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anyio.to_thread
import orjson
from starlette.requests import HTTPConnection

from ..config import Config
from ..passwords import hash_password, password_fingerprint, token_hash, verify_password
from ..protocol.errors import RequestError
from ..protocol.registry import User
from ..protocol.values import b64url, b64url_decode
from ..store.base import Store
from .observe import FAILED_LOGINS, THROTTLED_LOGINS
from .throttle import FailureCounter

log = logging.getLogger("jmapd.auth")

_DUMMY_HASH = hash_password("no such account")
CHALLENGE = 'Basic realm="jmapd", charset="UTF-8", Bearer realm="jmapd"'
FAILURE_WINDOW = 900  # seconds a failed login is remembered for the back-off
ACCESS_TOKEN = "access_token"  # the query parameter (RFC 6750 §2.3)


def unauthorized(detail: str) -> RequestError:
    return RequestError(
        "about:blank", 401, detail, headers={"WWW-Authenticate": CHALLENGE}, title="Unauthorized"
    )


def invalid_token(detail: str) -> RequestError:
    """RFC 6750 §3.1: no Basic challenge, so a browser never prompts for a password."""
    challenge = 'Bearer realm="jmapd", error="invalid_token"'
    return RequestError("about:blank", 401, detail, headers={"WWW-Authenticate": challenge},
                        title="Unauthorized")  # fmt: skip


def too_many(detail: str, wait: float) -> RequestError:
    return RequestError(
        "about:blank",
        429,
        detail,
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
        title="Too Many Requests",
    )


@dataclass
class _Entry:
    user: User
    expires: float


def _lower_priority() -> None:
    """A password-checking thread yields the CPU to requests (argon2's own threads, made by
    this one, inherit its niceness)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def basic_username(header: str) -> str | None:
    """The username of Basic credentials (None for another scheme or a malformed value)."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, _ = decoded.partition(":")
    return name if sep else None


class Authenticator:
    def __init__(
        self, store: Store, config: Config, client_address: Callable[[HTTPConnection], str]
    ) -> None:
        self.store = store
        self.ttl = config.auth_cache_ttl
        self.client_address = client_address
        self._cache: dict[str, _Entry] = {}
        self._denied: OrderedDict[str, float] = OrderedDict()  # key → when it may try again
        self._denied_ttl = float(config.auth_failure_cache_ttl)
        # Password checks run in threads of their own, at most max_concurrent_hashing at once,
        # at a lower CPU priority than the requests of users already logged in.
        self._hashing = ThreadPoolExecutor(
            max_workers=config.max_concurrent_hashing,
            thread_name_prefix="jmapd-password",
            initializer=_lower_priority,
        )
        self._queue_limit = int(config.max_login_queue)
        self._queued = 0
        free, longest = int(config.login_failures_free), float(config.login_backoff_max)
        self.by_address = FailureCounter(free, FAILURE_WINDOW, longest)
        self.by_name = FailureCounter(free, FAILURE_WINDOW, longest)
        self._key: bytes | None = None  # signs browser access tokens
        self._checked: dict[tuple[str, str], float] = {}  # credential → good until (streams)

    async def __call__(self, conn: HTTPConnection, access_token: bool = False) -> User:
        """The user of the request's credentials; with `access_token`, a browser access token
        in the query string does when there is no Authorization header."""
        header = conn.headers.get("authorization")
        token = conn.query_params.get(ACCESS_TOKEN) if access_token and not header else None
        if not header and token is None:
            raise unauthorized("authentication is required")
        if token is not None:
            return await self._access_token_user(conn, token)
        assert header is not None
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()
        entry = self._cache.get(key)
        now = time.monotonic()
        if entry is not None and entry.expires > now:
            return entry.user
        address, name = self.client_address(conn), basic_username(header)
        self._throttle(address, name)
        if self._denied.get(key, 0) > now:
            self._failed(address, name, "the same credentials failed a moment ago")
            raise unauthorized("wrong username or password")
        try:
            user = await self._check(header, name)
        except RequestError as e:
            if e.status == 401:
                self._failed(address, name, e.detail)
                self._deny(key, now)
            raise
        if name is not None:
            self.by_name.succeeded(name)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = _Entry(user, time.monotonic() + self.ttl)
        return user

    def _throttle(self, address: str, name: str | None) -> None:
        wait = max(self.by_address.wait(address), self.by_name.wait(name or ""))
        if wait > 0:
            THROTTLED_LOGINS.inc()
            raise too_many("too many failed logins; try again later", wait)

    def _signing_key(self) -> bytes:
        if self._key is None:
            self._key = base64.b64decode(self.store.server_key(
                "access-token", lambda: base64.b64encode(os.urandom(32)).decode()))  # fmt: skip
        return self._key

    def _sign(self, body: str) -> str:
        return b64url(hmac.digest(self._signing_key(), body.encode(), "sha256"))

    def issue_access_token(self, user: User, ttl: int) -> tuple[str, float]:
        """A browser access token for the user's credential, and when it expires."""
        kind, secret = user.credential
        expires = float(int(min(time.time() + ttl, user.expires)))
        named = secret if kind == "token" else password_fingerprint(secret)
        payload = {"a": user.account_id, "k": kind, "c": named, "e": expires}
        body = b64url(orjson.dumps(payload))
        return f"{body}.{self._sign(body)}", expires

    async def _access_token_user(self, conn: HTTPConnection, token: str) -> User:
        address = self.client_address(conn)
        self._throttle(address, None)
        try:
            return await anyio.to_thread.run_sync(self._verify_access_token, token)
        except RequestError as e:
            self._failed(address, None, e.detail)
            raise

    def _verify_access_token(self, token: str) -> User:
        body, _, mac = token.partition(".")
        if len(token) > 1000 or not hmac.compare_digest(mac.encode(), self._sign(body).encode()):
            raise invalid_token("the access token is not valid")
        payload = orjson.loads(b64url_decode(body))
        if payload["e"] <= time.time():
            raise invalid_token("the access token has expired")
        account = self.store.account_by_id(payload["a"])
        gone = invalid_token("the credential that issued the access token is no longer valid")
        if account is None:
            raise gone
        if payload["k"] == "token":
            api_token = self.store.token(payload["c"])
            if api_token is None or api_token.account_id != account.id:
                raise gone
            return User(account.id, account.name, api_token.read_only,
                        credential=("token", payload["c"]), expires=payload["e"])  # fmt: skip
        if not hmac.compare_digest(password_fingerprint(account.password_hash), payload["c"]):
            raise gone
        credential = ("password", account.password_hash)
        return User(account.id, account.name, credential=credential, expires=payload["e"])

    async def _check(self, header: str, name: str | None) -> User:
        """Verify, a bounded number of argon2 checks at a time (Basic); tokens are cheap."""
        if name is None:
            return await anyio.to_thread.run_sync(self._verify, header)
        if self._queued >= self._queue_limit:
            THROTTLED_LOGINS.inc()
            raise too_many("too many logins at once; try again", 1)
        self._queued += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._hashing, self._verify, header)
        finally:
            self._queued -= 1

    def _failed(self, address: str, name: str | None, why: str) -> None:
        FAILED_LOGINS.inc()
        self.by_address.failed(address)
        self.by_name.failed(name or "")
        log.warning("failed login for %r from %s: %s", name or "(no username)", address, why)

    def _deny(self, key: str, now: float) -> None:
        self._denied[key] = now + self._denied_ttl
        self._denied.move_to_end(key)
        while len(self._denied) > 10_000:
            self._denied.popitem(last=False)

    def _verify(self, header: str) -> User:
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise unauthorized("malformed Basic credentials") from None
            name, sep, password = decoded.partition(":")
            account = self.store.account_by_name(name) if sep else None
            # An unknown name costs the same argon2 check, so timing does not tell names apart.
            known = account.password_hash if account else _DUMMY_HASH
            if not verify_password(known, password) or account is None:
                raise unauthorized("wrong username or password")
            return User(account.id, account.name, credential=("password", account.password_hash))
        if scheme == "bearer":
            token = self.store.token(token_hash(credentials.strip()))
            account = self.store.account_by_id(token.account_id) if token else None
            if token is None or account is None:
                raise unauthorized("unknown or revoked token")
            credential = ("token", token_hash(credentials.strip()))
            return User(account.id, account.name, token.read_only, credential=credential)
        raise unauthorized(f"unsupported authentication scheme {scheme!r}")

    def check(self, user: User, max_age: float = 0) -> None:
        """Still valid? A cached credential is re-checked (cheaply) whenever a request reads
        the store, so a changed password, revoked token or removed account stops at once.
        Open streams pass `max_age`: a credential another stream found good that recently is
        not asked of the store again (a thousand streams of one user cost one check)."""
        kind, secret = user.credential
        now = time.monotonic()
        if max_age and time.time() < user.expires and self._checked.get(user.credential, 0) > now:
            return
        if time.time() >= user.expires:
            valid = False
        elif kind == "token":
            valid = self.store.token(secret) is not None
        else:
            account = self.store.account_by_id(user.account_id)
            valid = account is not None and account.password_hash == secret
        if not valid:
            self._checked.pop(user.credential, None)
            self._cache = {k: e for k, e in self._cache.items() if e.user is not user}
            raise unauthorized("the credentials are no longer valid")
        if max_age:  # an API request asks the store every time, and remembers nothing
            if len(self._checked) > 10_000:
                self._checked.clear()
            self._checked[user.credential] = now + max_age * 0.5
