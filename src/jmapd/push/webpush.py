"""Web Push to PushSubscriptions (RFC 8620 §7.2): the PushVerification when one is made, then
StateChanges once it is verified, encrypted for the client (RFC 8291 aes128gcm, http-ece) and
signed by the server (VAPID, RFC 8292 with py-vapid; the key advertised as RFC 9749 says).

- One process among all that share the store delivers StateChanges (elected like
  housekeeping): it hears every committed change (its own, the other workers' datagrams,
  every node's NOTIFY), finds the verified subscriptions of every user of each changed
  account, and sends each subscription at most one push per `push_interval`, carrying the
  newest states of everything that changed meanwhile.
- A delivery that fails on the network, a 5xx or a 429 is tried again with a growing back-off
  (a 429 also doubles that subscription's interval for a while); after three 404/410 answers
  in a row (RFC 8030 §7.3: the push subscription is gone) the PushSubscription is destroyed.
  A PushVerification is sent once and never again (RFC 9749 §6).
- Only the URL the client gave is ever contacted: no redirect is followed, and the URL must
  be https:// with a host that resolves to public addresses only (§8.7: no request into the
  server's own network), checked when the subscription is made and before every delivery.
  `push_allow_loopback` lifts that for tests and local development.
- A subscription whose credential is gone (a new password, a revoked token) is destroyed
  instead of pushed to (§7.2); so is one past its expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import http_ece
import httpx
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from ..config import Config
from ..passwords import credential_id
from ..protocol.values import b64url, b64url_decode, utc_seconds
from ..store.sql import SQLStore
from .bus import Bus, Changes

log = logging.getLogger("jmapd.push")

TYPE = "PushSubscription"
VAPID = "urn:ietf:params:jmap:webpush-vapid"
GONE_AFTER = 3  # 404/410 answers in a row before a subscription is destroyed
RETRIES = (1, 4, 15, 60)  # seconds before each new try of a failed delivery
JWT_LIFETIME = 12 * 3600


class Refused(ValueError):
    """A push URL the server will not contact."""


def check_form(url: str, allow_loopback: bool) -> str:
    """The URL's host; Refused unless it is an https:// URL (or, with `allow_loopback`,
    http://) naming a host and no credentials."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # reading it raises ValueError for a port that is not one
    except ValueError as e:
        raise Refused(f"is not a URL: {e}") from None
    if parts.scheme != "https" and not (allow_loopback and parts.scheme == "http"):
        raise Refused("must begin with https://")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise Refused("must name a host (and no credentials)")
    return parts.hostname


def check_host(host: str, allow_loopback: bool) -> None:
    """Refused unless the host resolves to public addresses only (any, with
    `allow_loopback`): no request into the server's own network (RFC 8620 §8.7)."""
    if allow_loopback:
        return
    try:
        infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Refused(f"host {host!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if not address.is_global:
            raise Refused(f"host {host!r} is not on the public Internet")


def check_url(url: str, allow_loopback: bool) -> None:
    """Refused unless the URL may be contacted: check_form, then check_host."""
    check_host(check_form(url, allow_loopback), allow_loopback)


def check_keys(keys: Any) -> str | None:
    """What is wrong with a PushSubscription's keys (RFC 8291: a P-256 public key and a
    16-octet authentication secret, both base64url), or None."""
    if keys is None:
        return None
    if not isinstance(keys, dict) or set(keys) != {"p256dh", "auth"}:
        return "must be null or an object with p256dh and auth"
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(keys["p256dh"]))
        auth = b64url_decode(keys["auth"])
    except (TypeError, ValueError):
        return "p256dh must be a P-256 public key in base64url, auth base64url"
    if len(auth) != 16:
        return "auth must be 16 octets in base64url"
    return None


def encrypt(body: bytes, keys: dict[str, str]) -> bytes:
    """RFC 8291: aes128gcm for the client's keys, with a new server key pair each time."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        body, private_key=ephemeral, dh=b64url_decode(keys["p256dh"]),
        auth_secret=b64url_decode(keys["auth"]), version="aes128gcm",
    )  # fmt: skip
    return encrypted


@dataclass
class Target:
    """One verified subscription, as the dispatcher knows it."""

    id: str
    owner: str  # the user (and account) it belongs to
    url: str
    keys: dict[str, str] | None
    types: list[str] | None
    expires: float
    credential: str
    pending: Changes = field(default_factory=dict)
    sending: asyncio.Task[None] | None = None
    last_sent: float = 0.0
    slow_until: float = 0.0  # a 429 doubles the interval until then
    gone: int = 0


def new_vapid_key() -> str:
    """A new P-256 private key for VAPID, as PEM."""
    vapid = Vapid02()
    vapid.generate_keys()
    pem: bytes = vapid.private_pem()
    return pem.decode()


Announce = Callable[[dict[str, dict[str, int]]], None]


class WebPush:
    def __init__(self, config: Config, store: SQLStore, bus: Bus, announce: Announce) -> None:
        self.config, self.store, self.bus, self.announce = config, store, bus, announce
        # One key for every node of the store, made by the first (RFC 9749 §4: the key a
        # subscription was made under is the one its pushes are signed with).
        self.vapid = Vapid02.from_pem(store.server_key("vapid", new_vapid_key).encode())
        point = self.vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.application_server_key = b64url(point)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client: httpx.AsyncClient | None = None
        self.targets: dict[str, dict[str, Target]] = {}  # user → subscription id → target
        self.tasks: set[asyncio.Task[None]] = set()
        self._signed: dict[str, tuple[int, str]] = {}  # audience → (exp, Authorization)
        self._hosts: dict[str, tuple[float, str]] = {}  # host → (until, why refused or "")
        self._valid: dict[str, float] = {}  # credential → until when it is known good
        self._sending = asyncio.Semaphore(32)  # pushes in flight at once

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.client = httpx.AsyncClient(
            timeout=self.config.push_timeout, follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )  # fmt: skip

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.client is not None:
            await self.client.aclose()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- sending -----------------------------------------------------------------------------

    def _headers(self, url: str, urgency: str) -> dict[str, str]:
        """The request's headers, with a VAPID JWT for the push service's origin (one per
        origin, signed again when less than an hour of it is left)."""
        parts = urllib.parse.urlsplit(url)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        signed = self._signed.get(audience)
        if signed is None or signed[0] < now + 3600:
            exp = int(now) + JWT_LIFETIME
            claims = {"aud": audience, "exp": exp, "sub": self.config.push_contact}
            if len(self._signed) > 10_000:
                self._signed.clear()
            signed = self._signed[audience] = (exp, self.vapid.sign(claims)["Authorization"])
        return {"Authorization": signed[1], "TTL": str(7 * 86400), "Urgency": urgency,
                "Content-Type": "application/json"}  # fmt: skip

    async def _allowed(self, url: str) -> bool:
        """check_url, the host's verdict kept for a minute (a resolver call per push would
        cost more than the push)."""
        allow = self.config.push_allow_loopback
        try:
            host = check_form(url, allow)
            known = self._hosts.get(host)
            if known is None or known[0] < time.monotonic():
                verdict = ""
                try:
                    await anyio.to_thread.run_sync(check_host, host, allow)
                except Refused as e:
                    verdict = str(e)
                if len(self._hosts) > 10_000:
                    self._hosts.clear()
                known = self._hosts[host] = (time.monotonic() + 60, verdict)
            if known[1]:
                raise Refused(known[1])
        except Refused as e:
            log.warning("a push URL was refused: %s", e)
            return False
        return True

    async def post(self, url: str, keys: dict[str, str] | None, value: dict[str, Any],
                   urgency: str = "normal") -> int:  # fmt: skip
        """POST one push; its HTTP status (0: it did not get there)."""
        assert self.client is not None
        async with self._sending:
            if not await self._allowed(url):
                return 0
            body = orjson.dumps(value)
            headers = self._headers(url, urgency)
            if keys is not None:
                body = encrypt(body, keys)
                headers["Content-Encoding"] = "aes128gcm"
            try:
                response = await self.client.post(url, content=body, headers=headers)
            except httpx.HTTPError as e:
                log.info("a push did not get through: %s", type(e).__name__)
                return 0
            return response.status_code

    def verify_soon(self, subscription_id: str, url: str, keys: dict[str, str] | None,
                    code: str) -> None:  # fmt: skip
        """Send the PushVerification of a subscription just made (called from any thread,
        after its commit); once, never again (RFC 9749 §6)."""
        if self.loop is None:
            return
        value = {"@type": "PushVerification", "pushSubscriptionId": subscription_id,
                 "verificationCode": code}  # fmt: skip
        self.loop.call_soon_threadsafe(self._spawn, self.post(url, keys, value, "high"))

    # -- the dispatcher ----------------------------------------------------------------------

    async def run(self) -> None:
        """Forever: while elected among the processes of this store, deliver StateChanges."""
        while True:
            with contextlib.ExitStack() as stack:
                elected = await anyio.to_thread.run_sync(
                    lambda: stack.enter_context(self.store.exclusive("webpush"))
                )
                if elected:
                    log.info("this process delivers Web Push")
                    await self._dispatch()
            await asyncio.sleep(5)

    async def _dispatch(self) -> None:
        queue = self.bus.subscribe_all()
        try:
            while True:
                changes = await queue.get()
                try:
                    await self._route(changes)
                except Exception:
                    log.exception("routing a state change to push subscriptions failed")
        finally:
            self.bus.unsubscribe(queue)

    async def _route(self, changes: Changes) -> None:
        for account_id, types in changes.items():
            if TYPE in types:
                self.targets.pop(account_id, None)  # its subscriptions changed: read again
        known = set(self.targets)
        users, read = await anyio.to_thread.run_sync(self._users_of, list(changes), known)
        self.targets.update(read)
        for user, account_ids in users.items():
            for target in self.targets.get(user, {}).values():
                for account_id in account_ids:
                    wanted = {t: s for t, s in changes[account_id].items()
                              if target.types is None or t in target.types}  # fmt: skip
                    if wanted:
                        target.pending.setdefault(account_id, {}).update(wanted)
                if target.pending and target.sending is None:
                    target.sending = asyncio.ensure_future(self._deliver(target))

    def _users_of(
        self, account_ids: list[str], known: set[str]
    ) -> tuple[dict[str, list[str]], dict[str, dict[str, Target]]]:
        """In a worker thread: user → the changed accounts they may use, and the targets of
        those users not `known` yet (the event loop keeps them)."""
        users: dict[str, list[str]] = {}
        for account_id in account_ids:
            for user in self.store.users_of(account_id):
                users.setdefault(user, []).append(account_id)
        return users, {user: self._read_targets(user) for user in users if user not in known}

    def _read_targets(self, user: str) -> dict[str, Target]:
        with self.store.read(user) as txn:
            records = txn.get(TYPE, None)
        return {
            id: Target(
                id,
                user,
                r["url"],
                r["keys"],
                r["types"],
                utc_seconds(r["expires"]),
                r["_credential"],
            )
            for id, r in records.items()
            if r.get("verificationCode") is not None and r["verificationCode"] == r.get("_code")
        }

    async def _deliver(self, target: Target) -> None:
        """Send what is pending, no sooner than the interval after the last push, trying
        again after failures; what changes meanwhile goes into the same push."""
        try:
            attempt = 0
            while target.pending:
                interval = self.config.push_interval * (2 if time.time() < target.slow_until else 1)
                await asyncio.sleep(max(0.0, target.last_sent + interval - time.time()))
                if not await self._still_valid(target):
                    return
                changed, target.pending = target.pending, {}
                status = await self.post(target.url, target.keys,
                                         {"@type": "StateChange", "changed": changed})  # fmt: skip
                target.last_sent = time.time()
                if 200 <= status < 300:
                    attempt, target.gone = 0, 0
                    continue
                if status in (404, 410):
                    target.gone += 1
                    if target.gone >= GONE_AFTER:
                        log.info("push subscription %s is gone (HTTP %s)", target.id, status)
                        await self._destroy(target)
                        return
                    continue
                if status == 429:
                    target.slow_until = time.time() + 3600
                if status == 0 or status == 429 or status >= 500:
                    if attempt < len(RETRIES):  # keep what failed, under anything newer
                        for account_id, types in changed.items():
                            target.pending[account_id] = {
                                **types,
                                **target.pending.get(account_id, {}),
                            }
                        await asyncio.sleep(RETRIES[attempt])
                        attempt += 1
                        continue
                    log.info("giving up a push to subscription %s (HTTP %s)", target.id, status)
                attempt = 0
        finally:
            target.sending = None

    async def _still_valid(self, target: Target) -> bool:
        """Not expired, and its credential still the one that made it (asked of the store
        at most every few seconds); else destroyed."""
        now = time.time()
        if target.expires > now and self._valid.get(target.credential, 0) > now:
            return True
        if target.expires > now and await anyio.to_thread.run_sync(
            credential_valid, self.store, target.owner, target.credential
        ):
            if len(self._valid) > 10_000:
                self._valid.clear()
            self._valid[target.credential] = now + 2
            return True
        await self._destroy(target)
        return False

    async def _destroy(self, target: Target) -> None:
        self.targets.get(target.owner, {}).pop(target.id, None)
        await anyio.to_thread.run_sync(destroy, self.store, target.owner, target.id,
                                       self.announce)  # fmt: skip


def credential_valid(store: SQLStore, owner: str, credential: str) -> bool:
    """Whether the credential a subscription of `owner` was made with is still good."""
    kind, _, secret = credential.partition(":")
    if kind == "token":
        token = store.token(secret)
        return token is not None and token.account_id == owner
    account = store.account_by_id(owner)
    return account is not None and credential_id("password", account.password_hash) == credential


def destroy(store: SQLStore, owner: str, subscription_id: str, announce: Announce) -> None:
    """Destroy one subscription (its URL and keys erased with it) and announce the change."""
    with store.write(owner) as txn:
        if txn.get(TYPE, [subscription_id]):
            txn.destroy(TYPE, subscription_id)
    if txn.changed:
        announce({owner: txn.changed})


def expire(store: SQLStore, announce: Announce) -> int:
    """Housekeeping: destroy every subscription past its expiry or whose credential is gone;
    how many."""
    now, gone = time.time(), 0
    for owner, id, record in store.records_everywhere(TYPE):
        if utc_seconds(record["expires"]) <= now or not credential_valid(
            store, owner, record["_credential"]
        ):
            destroy(store, owner, id, announce)
            gone += 1
    return gone
