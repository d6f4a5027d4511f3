"""HTTP Basic and Bearer authentication, with a short in-memory cache of verified credentials
(argon2 is slow on purpose; a client sends its credentials with every request)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass

import anyio.to_thread
from starlette.requests import HTTPConnection

from ..passwords import hash_password, token_hash, verify_password
from ..protocol.errors import RequestError
from ..protocol.registry import User
from ..store.base import Store

_DUMMY_HASH = hash_password("no such account")
CHALLENGE = 'Basic realm="jmapd", charset="UTF-8", Bearer realm="jmapd"'


def unauthorized(detail: str) -> RequestError:
    return RequestError(
        "about:blank", 401, detail, headers={"WWW-Authenticate": CHALLENGE}, title="Unauthorized"
    )


@dataclass
class _Entry:
    user: User
    expires: float


class Authenticator:
    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._cache: dict[str, _Entry] = {}

    async def __call__(self, conn: HTTPConnection) -> User:
        header = conn.headers.get("authorization")
        if not header:
            raise unauthorized("authentication is required")
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()
        entry = self._cache.get(key)
        if entry is not None and entry.expires > time.monotonic():
            return entry.user
        user = await anyio.to_thread.run_sync(self._verify, header)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = _Entry(user, time.monotonic() + self.ttl)
        return user

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

    def check(self, user: User) -> None:
        """Still valid? A cached credential is re-checked (cheaply) whenever a request reads
        the store, so a changed password, revoked token or removed account stops at once."""
        kind, secret = user.credential
        if kind == "token":
            valid = self.store.token(secret) is not None
        else:
            account = self.store.account_by_id(user.account_id)
            valid = account is not None and account.password_hash == secret
        if not valid:
            self._cache = {k: e for k, e in self._cache.items() if e.user is not user}
            raise unauthorized("the credentials are no longer valid")
