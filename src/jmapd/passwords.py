"""Password and token hashing: argon2id for passwords, SHA-256 for random API tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
