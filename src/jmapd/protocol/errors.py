"""Errors as typed values carrying their wire names (RFC 8620 §3.6, §5.3)."""

from __future__ import annotations

from typing import Any

PROBLEM_PREFIX = "urn:ietf:params:jmap:error:"


class RequestError(Exception):
    """A request-level error: answered as RFC 7807 problem JSON with an HTTP status (§3.6.1)."""

    def __init__(
        self,
        type: str,
        status: int,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.type = type if ":" in type else PROBLEM_PREFIX + type
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        return {"type": self.type, "status": self.status, "detail": self.detail, **self.extra}


class TypedError(Exception):
    """An error whose JSON form is {"type": …, "description": …, and any extra properties}."""

    def __init__(self, type: str, description: str | None = None, **extra: Any) -> None:
        super().__init__(description or type)
        self.type = type
        self.description = description
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.description:
            out["description"] = self.description
        out.update(self.extra)
        return out


class MethodError(TypedError):
    """A method-level error: becomes ["error", {"type": …}, callId] (§3.6.2)."""


def invalid_arguments(description: str) -> MethodError:
    return MethodError("invalidArguments", description)


class SetError(TypedError):
    """A per-record error in notCreated / notUpdated / notDestroyed (§5.3), with the
    `properties` at fault where that applies."""

    def __init__(
        self,
        type: str,
        description: str | None = None,
        properties: list[str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(type, description, properties=properties, **extra)


def invalid_properties(description: str, *properties: str) -> SetError:
    return SetError("invalidProperties", description, list(properties))
