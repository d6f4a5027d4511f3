"""Value kinds of RFC 8620 §1.2-1.4 and their checkers.

A kind checks one JSON value and returns it (with `#creationId` references resolved for Ids),
or raises ValueError with a message a developer can act on.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

# Matched with fullmatch: "$" would let a trailing newline through, "\d" non-ASCII digits.
ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
UTC_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z")
MAX_SAFE = 2**53 - 1

Resolver = Callable[[str], str | None]


def utc_date(seconds: float) -> str:
    """A time (seconds since the epoch) as a UTCDate, to the second."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_seconds(date: str) -> float:
    """A UTCDate (or any RFC 3339 date-time) as seconds since the epoch."""
    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5, as JWTs, Web Push keys and our tokens are)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """The octets of base64url with or without its padding; ValueError if it is not."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvalidValue(ValueError):
    """A value invalid somewhere inside: `path` names where (JSON Pointer tokens below the
    property), so invalidProperties can name `name/components/1/kind` (RFC 9610 clients)."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path

    def within(self, token: str) -> InvalidValue:
        return InvalidValue(str(self), (token, *self.path))


class Kind:
    name = "value"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        raise NotImplementedError


class _Simple(Kind):
    def __init__(self, name: str, test: Callable[[Any], bool]) -> None:
        self.name = name
        self.test = test

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if not self.test(value):
            raise ValueError(f"must be {self.name}")
        return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_SAFE <= v <= MAX_SAFE


def date_test(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    def test(v: Any) -> bool:
        if not isinstance(v, str) or not pattern.fullmatch(v):
            return False
        try:
            datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True

    return test


STRING = _Simple("a String", lambda v: isinstance(v, str))
BOOLEAN = _Simple("a Boolean", lambda v: isinstance(v, bool))
INT = _Simple("an Int", _is_int)
UNSIGNED_INT = _Simple("an UnsignedInt", lambda v: _is_int(v) and v >= 0)
POSITIVE_INT = _Simple("a positive Int", lambda v: _is_int(v) and v > 0)
UTC_DATE_KIND = _Simple("a UTCDate (YYYY-MM-DDTHH:MM:SSZ)", date_test(UTC_DATE))
OBJECT = _Simple("an object", lambda v: isinstance(v, dict))


class IdKind(Kind):
    """An Id (§1.2); with `#creationId` replaced by the id created earlier in the request."""

    name = "an Id"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if isinstance(value, str) and value.startswith("#") and resolve is not None:
            real = resolve(value[1:])
            if real is None:
                raise ValueError(f"refers to unknown creation id {value!r}")
            return real
        if not isinstance(value, str) or not ID.fullmatch(value):
            raise ValueError("must be an Id (1-255 of A-Z a-z 0-9 _ -)")
        return value


ID_KIND = IdKind()


class Nullable(Kind):
    def __init__(self, inner: Kind) -> None:
        self.inner = inner
        self.name = f"null or {inner.name}"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        return None if value is None else self.inner.check(value, resolve)


class ListOf(Kind):
    def __init__(self, inner: Kind) -> None:
        self.inner = inner
        self.name = f"a list of {inner.name}"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"must be {self.name}")
        out = []
        for i, item in enumerate(value):
            try:
                out.append(self.inner.check(item, resolve))
            except InvalidValue as e:
                raise e.within(str(i)) from None
            except ValueError as e:
                raise ValueError(f"item {i} {e}") from None
        return out


class MapOf(Kind):
    """A JSON object with keys and values of given kinds (e.g. Id[Boolean])."""

    def __init__(self, key: Kind, value: Kind) -> None:
        self.key = key
        self.value = value
        self.name = f"a map of {key.name} to {value.name}"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be {self.name}")
        out = {}
        for k, v in value.items():
            try:
                out[self.key.check(k, resolve)] = self.value.check(v, resolve)
            except InvalidValue as e:
                raise e.within(str(k)) from None
            except ValueError as e:
                raise ValueError(f"entry {k!r} {e}") from None
        return out
