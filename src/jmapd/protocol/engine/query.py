"""Foo/query and Foo/queryChanges (RFC 8620 §5.5, §5.6).

The generic query reads the type's records and filters and sorts them in Python: correct for
every type, and fast enough for the small ones. A type with many records (Email) answers with
its own index through `Hooks.query`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import MethodError, invalid_arguments
from ..registry import Context
from ..values import BOOLEAN, ID_KIND, INT, OBJECT, STRING, UNSIGNED_INT, ListOf, Nullable
from .args import MISSING, parse_state
from .datatype import DataType, Record, method_args

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
    digits = len(value) - len(value.lstrip("0123456789"))
    return (0, int(value[:digits])) if digits else (1, 0)


COLLATIONS: dict[str, Callable[[str], Any]] = {
    # RFC 4790 §9.2: UTF-8 octets with a-z mapped to A-Z (bytes.upper maps only those).
    "i;ascii-casemap": lambda v: v.encode("utf-8", "surrogatepass").upper(),
    "i;ascii-numeric": _ascii_numeric,
    "i;unicode-casemap": _unicode_casemap,
}
DEFAULT_COLLATION = "i;unicode-casemap"

Predicate = Callable[[Record], bool]


def compile_filter(dt: DataType, filter: Any) -> Predicate:
    """A FilterOperator or FilterCondition as a predicate (§5.5), checked on the way."""
    if not isinstance(filter, dict):
        raise invalid_arguments("a filter must be an object")
    if "operator" in filter:
        operator, conditions = filter["operator"], filter.get("conditions")
        if set(filter) != {"operator", "conditions"} or not isinstance(conditions, list):
            raise invalid_arguments("a FilterOperator has exactly operator and conditions")
        parts = [compile_filter(dt, c) for c in conditions]
        if operator == "AND":
            return lambda r: all(p(r) for p in parts)
        if operator == "OR":
            return lambda r: any(p(r) for p in parts)
        if operator == "NOT":
            return lambda r: not any(p(r) for p in parts)
        raise invalid_arguments(f"unknown filter operator {operator!r}")
    tests = []
    for name, value in filter.items():
        condition = dt.filters.get(name)
        if condition is None:
            raise MethodError("unsupportedFilter", f"{dt.name} cannot be filtered by {name!r}")
        try:
            value = condition.kind.check(value)
        except ValueError as e:
            raise invalid_arguments(f"filter {name} {e}") from None
        tests.append((condition.test, value))
    return lambda r: all(test(r, value) for test, value in tests)


def compile_sort(dt: DataType, sort: list[dict[str, Any]] | None) -> list[tuple[Any, bool]]:
    """The Comparators (§5.5) as (key function, isAscending) pairs."""
    keys = []
    for comparator in sort or []:
        name = comparator.get("property")
        if set(comparator) - {"property", "isAscending", "collation"}:
            raise invalid_arguments(f"unknown Comparator property in {comparator}")
        if not isinstance(name, str):
            raise invalid_arguments("a Comparator needs a property")
        if name not in dt.sorts:
            raise MethodError("unsupportedSort", f"{dt.name} cannot be sorted by {name!r}")
        ascending = comparator.get("isAscending", True)
        if not isinstance(ascending, bool):
            raise invalid_arguments("isAscending must be a Boolean")
        collation = comparator.get("collation", DEFAULT_COLLATION)
        if collation not in COLLATIONS:
            raise MethodError("unsupportedSort", f"unknown collation {collation!r}")
        keys.append((_sort_key(dt.sorts[name], COLLATIONS[collation]), ascending))
    return keys


def _sort_key(value_of: Callable[[Record], Any], collate: Callable[[str], Any]) -> Any:
    def key(record: Record) -> tuple[int, Any]:
        value = value_of(record)
        if value is None:
            return (0, 0)
        return (1, collate(value) if isinstance(value, str) else value)

    return key


def run_query(
    ctx: Context, dt: DataType, txn: Transaction, filter: Any, sort: Any, own: bool = True
) -> list[str]:
    """Every matching id, in sort order (ties broken by id so pages are stable); from the
    type's own query hook when it has one (unless `own` is False)."""
    ids = dt.hooks.query(ctx, txn, filter, sort) if own else None
    if ids is not None:
        return ids
    predicate = compile_filter(dt, filter) if filter is not None else (lambda r: True)
    keys = compile_sort(dt, sort)
    records = txn.get(dt.name, None)
    for id, record in records.items():
        record["id"] = id
    dt.hooks.present(ctx, txn, records)
    matched = sorted((r for r in records.values() if predicate(r)), key=lambda r: r["id"])
    for key, ascending in reversed(keys):
        matched.sort(key=key, reverse=not ascending)
    return [r["id"] for r in matched]


def query(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    a = method_args(ctx, dt, "query", QUERY_ARGS, args)
    with ctx.read(a["accountId"]) as txn:
        ids = run_query(ctx, dt, txn, a["filter"], a["sort"])
        state = txn.state(dt.name)
    total = len(ids)
    if a["anchor"] is not None:
        try:
            start = max(0, ids.index(a["anchor"]) + a["anchorOffset"])
        except ValueError:
            raise MethodError("anchorNotFound", f"{a['anchor']} is not in the results") from None
    else:
        start = a["position"] if a["position"] >= 0 else max(0, total + a["position"])
    limit = a["limit"] if a["limit"] is not None and a["limit"] <= MAX_LIMIT else MAX_LIMIT
    out = {
        "accountId": a["accountId"],
        "queryState": str(state),
        "canCalculateChanges": True,
        "position": start,
        "ids": ids[start : start + limit],
    }
    if a["calculateTotal"]:
        out["total"] = total
    if limit != a["limit"]:
        out["limit"] = limit
    return out


def query_changes(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    """Every record changed since the old state is removed and, if it matches now, added at
    its new index (§5.6 allows the extra removals); exact whatever the filter and sort."""
    a = method_args(ctx, dt, "queryChanges", QUERY_CHANGES_ARGS, args)
    since = parse_state(a["sinceQueryState"])
    with ctx.read(a["accountId"]) as txn:
        ids = run_query(ctx, dt, txn, a["filter"], a["sort"])
        state = txn.state(dt.name)
        if since > state or since < txn.floor(dt.name):
            raise MethodError("cannotCalculateChanges", f"query state {since} is not known")
        rows = txn.changes(dt.name, since)
    index = {id: i for i, id in enumerate(ids)}
    changed = [r for r in rows if not (r.created_modseq > since and r.destroyed)]
    removed = [r.id for r in changed if r.created_modseq <= since]
    added = sorted((index[r.id], r.id) for r in changed if r.id in index)
    if a["upToId"] is not None and a["upToId"] in index:
        added = [(i, id) for i, id in added if i <= index[a["upToId"]]]
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
    if a["calculateTotal"]:
        out["total"] = len(ids)
    return out
