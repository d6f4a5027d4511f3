"""Foo/query and Foo/queryChanges (RFC 8620 §5.5, §5.6).

The generic query reads the type's records and filters and sorts them in Python: correct for
every type, and fast enough for the small ones. A type with many records (Email) answers with
its own index through `Hooks.query`.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import MethodError, invalid_arguments
from ..registry import Context
from ..values import BOOLEAN, ID_KIND, INT, OBJECT, STRING, UNSIGNED_INT, ListOf, Nullable
from .args import MISSING, parse_state
from .datatype import DataType, Filter, Record, method_args

if TYPE_CHECKING:
    from ...store.base import Transaction

QUERY_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "filter": (Nullable(OBJECT), None),
    "sort": (Nullable(ListOf(OBJECT)), None),
    "position": (INT, 0),
    "anchor": (Nullable(ID_KIND), None),
    "anchorOffset": (INT, 0),
    "limit": (Nullable(UNSIGNED_INT), None),
    "calculateTotal": (BOOLEAN, False),
}
QUERY_CHANGES_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "filter": (Nullable(OBJECT), None),
    "sort": (Nullable(ListOf(OBJECT)), None),
    "sinceQueryState": (STRING, MISSING),
    "maxChanges": (Nullable(UNSIGNED_INT), None),
    "upToId": (Nullable(ID_KIND), None),
    "calculateTotal": (BOOLEAN, False),
}
MAX_LIMIT = 10_000
ASCII_DIGITS = "0123456789"


def _titlecase(char: str) -> str:
    # The simple titlecase mapping of UnicodeData.txt: one character to one, or none.
    title = char.title()
    return title if len(title) == 1 else char


def _unicode_casemap(value: str) -> str:
    # RFC 5051 i;unicode-casemap: every character titlecased and fully decomposed, then
    # compared as UTF-8 octets (which order like code points).
    decomposed = unicodedata.normalize("NFKD", value)
    return unicodedata.normalize("NFKD", "".join(map(_titlecase, decomposed)))


def _ascii_numeric(value: str) -> tuple[int, int]:
    # RFC 4790 i;ascii-numeric: the leading digits as a number; no digits sorts last.
    digits = len(value) - len(value.lstrip(ASCII_DIGITS))
    return (0, int(value[:digits])) if digits else (1, 0)


COLLATIONS: dict[str, Callable[[str], Any]] = {
    # RFC 4790 §9.2: UTF-8 octets with a-z mapped to A-Z (bytes.upper maps only those).
    "i;ascii-casemap": lambda v: v.encode("utf-8", "surrogatepass").upper(),
    "i;ascii-numeric": _ascii_numeric,
    "i;unicode-casemap": _unicode_casemap,
}
DEFAULT_COLLATION = "i;unicode-casemap"

Predicate = Callable[[Record], bool]
T = TypeVar("T")


def collation_text(collation: str, value: str) -> str:
    """A collation's key for a value as text that orders the same compared as UTF-8 octets
    (or code points): for keys kept in a database index."""
    if collation == "i;ascii-numeric":
        digits = value[: len(value) - len(value.lstrip(ASCII_DIGITS))].lstrip("0")
        return f"0{len(digits):06d}{digits}" if value[:1] in ASCII_DIGITS else "1"
    key = COLLATIONS[collation](value)
    return key.decode("utf-8", "surrogatepass") if isinstance(key, bytes) else str(key)


def walk_filter(
    dt: DataType,
    filter: Any,
    leaf: Callable[[Filter, Any], T],
    combine: Callable[[str, list[T]], T],
) -> T:
    """Check a FilterOperator or FilterCondition (§5.5) and build it up from its leaves: each
    condition property's checked value through `leaf`, operators (and a condition's several
    properties, as "AND") through `combine`."""
    if not isinstance(filter, dict):
        raise invalid_arguments("a filter must be an object")
    if "operator" in filter:
        operator, conditions = filter["operator"], filter.get("conditions")
        if set(filter) != {"operator", "conditions"} or not isinstance(conditions, list):
            raise invalid_arguments("a FilterOperator has exactly operator and conditions")
        if operator not in ("AND", "OR", "NOT"):
            raise invalid_arguments(f"unknown filter operator {operator!r}")
        return combine(operator, [walk_filter(dt, c, leaf, combine) for c in conditions])
    parts = []
    for name, value in filter.items():
        condition = dt.filters.get(name)
        if condition is None:
            raise MethodError("unsupportedFilter", f"{dt.name} cannot be filtered by {name!r}")
        try:
            value = condition.kind.check(value)
        except ValueError as e:
            raise invalid_arguments(f"filter {name} {e}") from None
        parts.append(leaf(condition, value))
    return combine("AND", parts)


def _combine(operator: str, parts: list[Predicate]) -> Predicate:
    if operator == "AND":
        return lambda r: all(p(r) for p in parts)
    if operator == "OR":
        return lambda r: any(p(r) for p in parts)
    return lambda r: not any(p(r) for p in parts)


def compile_filter(dt: DataType, filter: Any) -> Predicate:
    """A FilterOperator or FilterCondition as a predicate over records."""
    return walk_filter(dt, filter, lambda c, v: lambda r: c.test(r, v), _combine)


@dataclass(frozen=True)
class Comparator:
    property: str
    is_ascending: bool
    collation: str
    extra: dict[str, Any]  # the type's own Comparator properties (Email: keyword)


def parse_sort(dt: DataType, sort: list[dict[str, Any]] | None) -> list[Comparator]:
    """Check the Comparators (§5.5), with the properties a sort of the type adds. Properties
    beyond those are ignored (ruling, issue 9: a widely used client sends three more)."""
    out = []
    for comparator in sort or []:
        name = comparator.get("property")
        if not isinstance(name, str):
            raise invalid_arguments("a Comparator needs a property")
        if name not in dt.sorts:
            raise MethodError("unsupportedSort", f"{dt.name} cannot be sorted by {name!r}")
        own = dt.sort_arguments.get(name, {})
        ascending = comparator.get("isAscending", True)
        if not isinstance(ascending, bool):
            raise invalid_arguments("isAscending must be a Boolean")
        collation = comparator.get("collation", DEFAULT_COLLATION)
        if not isinstance(collation, str):
            raise invalid_arguments("collation must be a String")
        if collation not in COLLATIONS:
            raise MethodError("unsupportedSort", f"unknown collation {collation!r}")
        extra = {}
        for arg, kind in own.items():
            if arg not in comparator:
                raise invalid_arguments(f"sorting by {name} needs {arg}")
            try:
                extra[arg] = kind.check(comparator[arg])
            except ValueError as e:
                raise invalid_arguments(f"Comparator {arg} {e}") from None
        out.append(Comparator(name, ascending, collation, extra))
    return out


def _sort_key(value_of: Callable[[Record], Any], collate: Callable[[str], Any]) -> Any:
    def key(record: Record) -> tuple[int, Any]:
        value = value_of(record)
        if value is None:
            return (0, 0)
        return (1, collate(value) if isinstance(value, str) else value)

    return key


class Results(Protocol):
    """A query's ids in order, read as far as they are needed."""

    def ids(self, start: int = 0, wanted: int = 256) -> Iterator[str]:
        """The ids from position `start` on; `wanted` says how many will likely be read."""
        ...

    def total(self) -> int: ...


class ListResults:
    def __init__(self, ids: list[str]) -> None:
        self._ids = ids

    def ids(self, start: int = 0, wanted: int = 256) -> Iterator[str]:
        return iter(self._ids[start:])

    def total(self) -> int:
        return len(self._ids)


def run_query(
    ctx: Context, dt: DataType, txn: Transaction, filter: Any, sort: Any, own: bool = True
) -> Results:
    """Every matching id, in sort order (ties broken by id so pages are stable); from the
    type's own query hook when it has one (unless `own` is False)."""
    found = dt.hooks.query(ctx, txn, filter, sort) if own else None
    if found is not None:
        return found
    predicate = compile_filter(dt, filter) if filter is not None else (lambda r: True)
    comparators = parse_sort(dt, sort)
    records = txn.get(dt.name, None)
    for id, record in records.items():
        record["id"] = id
    dt.hooks.present(ctx, txn, records)
    matched = sorted((r for r in records.values() if predicate(r)), key=lambda r: r["id"])
    for c in reversed(comparators):
        matched.sort(key=_sort_key(dt.sorts[c.property], COLLATIONS[c.collation]),
                     reverse=not c.is_ascending)  # fmt: skip
    return ListResults([r["id"] for r in matched])


def _index_of(results: Results, id: str) -> int | None:
    return next((i for i, found in enumerate(results.ids()) if found == id), None)


def query(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    a = method_args(ctx, dt, "query", QUERY_ARGS, args)
    limit = a["limit"] if a["limit"] is not None and a["limit"] <= MAX_LIMIT else MAX_LIMIT
    with ctx.read(a["accountId"]) as txn:
        results = run_query(ctx, dt, txn, a["filter"], a["sort"])
        state = txn.state(dt.name)
        total = results.total() if a["calculateTotal"] or a["position"] < 0 else None
        if a["anchor"] is not None:
            index = _index_of(results, a["anchor"])
            if index is None:
                raise MethodError("anchorNotFound", f"{a['anchor']} is not in the results")
            start = max(0, index + a["anchorOffset"])
        elif a["position"] < 0:
            assert total is not None
            start = max(0, total + a["position"])
        else:
            start = a["position"]
        ids = list(itertools.islice(results.ids(start, limit), limit))
    out = {
        "accountId": a["accountId"],
        "queryState": str(state),
        "canCalculateChanges": True,
        "position": start,
        "ids": ids,
    }
    if a["calculateTotal"]:
        out["total"] = total
    if limit != a["limit"]:
        out["limit"] = limit
    return out


def query_changes(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    """Every record changed since the old state, and every one whose place a change may have
    moved (Hooks.query_dependents), is removed and, if it matches now, added at its new index
    (§5.6 allows the extra removals); exact whatever the filter and sort. upToId ends the
    added list at that id, unless it is one of those that moved."""
    a = method_args(ctx, dt, "queryChanges", QUERY_CHANGES_ARGS, args)
    since = parse_state(a["sinceQueryState"])
    with ctx.read(a["accountId"]) as txn:
        results = run_query(ctx, dt, txn, a["filter"], a["sort"])
        state = txn.state(dt.name)
        if since > state or since < txn.floor(dt.name):
            raise MethodError("cannotCalculateChanges", f"query state {since} is not known")
        rows = txn.changes(dt.name, since)
        changed = [r for r in rows if not (r.created_modseq > since and r.destroyed)]
        live = {r.id for r in changed if not r.destroyed}
        dependents = dt.hooks.query_dependents(ctx, txn, since, live) - {r.id for r in rows}
        removed = [r.id for r in changed if r.created_modseq <= since] + sorted(dependents)
        wanted = live | dependents
        up_to = a["upToId"] if a["upToId"] not in wanted else None
        added: list[tuple[int, str]] = []
        for index, id in enumerate(results.ids() if wanted else ()):
            if id in wanted:
                added.append((index, id))
                if len(added) == len(wanted):
                    break
            if id == up_to:
                break
        total = results.total() if a["calculateTotal"] else None
    if a["maxChanges"] is not None and len(removed) + len(added) > a["maxChanges"]:
        raise MethodError(
            "tooManyChanges",
            f"{len(removed) + len(added)} changes; maxChanges is {a['maxChanges']}",
        )
    out: dict[str, Any] = {
        "accountId": a["accountId"],
        "oldQueryState": a["sinceQueryState"],
        "newQueryState": str(state),
        "removed": removed,
        "added": [{"id": id, "index": i} for i, id in added],
    }
    if total is not None:
        out["total"] = total
    return out
