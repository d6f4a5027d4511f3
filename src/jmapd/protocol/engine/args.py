"""Method arguments: checked against a declaration, unknown ones rejected (invalidArguments)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import MethodError, invalid_arguments
from ..values import ID, Kind

MISSING: Any = object()
DECIMAL = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() takes "²"

ArgSpec = dict[str, tuple[Kind, Any]]  # name → (kind, default); default MISSING = required


def parse_args(args: dict[str, Any], spec: ArgSpec, resolve: Any = None) -> dict[str, Any]:
    unknown = sorted(set(args) - set(spec))
    if unknown:
        raise invalid_arguments(f"unknown argument(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, (kind, default) in spec.items():
        if name not in args:
            if default is MISSING:
                raise invalid_arguments(f"missing required argument {name!r}")
            out[name] = default
            continue
        try:
            out[name] = kind.check(args[name], resolve)
        except ValueError as e:
            raise invalid_arguments(f"{name} {e}") from None
    return out


def parse_state(value: str) -> int:
    """State strings are modseqs in decimal: one with characters no state has (beyond
    printable ASCII, like "²") is invalidArguments; any other this server never gave cannot
    be calculated from."""
    if not (value.isascii() and value.isprintable()):
        raise invalid_arguments(f"{value!r} is not a state string")
    if not DECIMAL.fullmatch(value):
        raise MethodError("cannotCalculateChanges", f"unknown state {value!r}")
    return int(value)


def parse_position(value: str) -> tuple[int, str | None]:
    """A /changes state: "M", every change up to modseq M; or "M.id", given as an
    intermediate state when one modseq changed more records than one response holds: every
    change before M, and those of M up to that record id (in id order)."""
    modseq, dot, after = value.partition(".")
    since = parse_state(modseq)
    if dot and not ID.fullmatch(after):
        raise MethodError("cannotCalculateChanges", f"unknown state {value!r}")
    return since, after if dot else None


def request_too_large(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise MethodError("requestTooLarge", f"{count} {what}; the limit is {limit}")
