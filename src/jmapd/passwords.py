"""Password and token hashing: argon2id for passwords, SHA-256 for random API tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .protocol.values import b64url

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return "jmapd_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # Tokens are 256 random bits: a fast hash is enough and lets every request check one.
    return hashlib.sha256(token.encode()).hexdigest()


def password_fingerprint(password_hash: str) -> str:
    """Names a password without revealing its hash (which could be attacked offline): what
    access tokens and push subscriptions keep of the password that made them."""
    return b64url(hashlib.sha256(password_hash.encode()).digest()[:16])


def credential_id(kind: str, secret: str) -> str:
    """A verified credential ("password", its hash) or ("token", its hash) as one string
    that stops matching when the password changes or the token is revoked."""
    return f"token:{secret}" if kind == "token" else f"password:{password_fingerprint(secret)}"
