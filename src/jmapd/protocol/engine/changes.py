"""Foo/changes (RFC 8620 §5.2)."""

from __future__ import annotations

from typing import Any

from ...store.base import Change
from ..errors import MethodError
from ..registry import Context
from ..values import ID_KIND, POSITIVE_INT, STRING, Nullable
from .args import MISSING, parse_position
from .datatype import DataType, method_args

CHANGES_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "sinceState": (STRING, MISSING),
    "maxChanges": (Nullable(POSITIVE_INT), None),
}


def changes(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    """Every change since the state, `maxChanges` at a time (capped by the server's
    max_changes). A page ends between two records of one modseq when need be, with an
    intermediate state "M.id" (args.parse_position): so any history kept can be answered,
    however many records one transaction changed."""
    a = method_args(ctx, dt, "changes", CHANGES_ARGS, args)
    since, after = parse_position(a["sinceState"])
    limit = min(a["maxChanges"] or ctx.config.max_changes, ctx.config.max_changes)
    with ctx.read(a["accountId"]) as txn:
        current = txn.state(dt.name)
        if since > current or since < txn.floor(dt.name):
            raise MethodError("cannotCalculateChanges", f"state {since} is not known any more")
        rows = txn.changes(dt.name, since, limit + 1, after)
    new_state, more = str(current), False
    if len(rows) > limit:
        last, following = rows[limit - 1], rows[limit]
        rows = rows[:limit]
        more = True
        new_state = str(last.modseq)
        if following.modseq == last.modseq:
            new_state += f".{last.id}"

    def seen(modseq: int, row: Change) -> bool:
        """Whether the client's state includes what happened to the row at that modseq."""
        return modseq < since or (modseq == since and (after is None or row.id <= after))

    created, updated, destroyed = [], [], []
    for row in rows:
        if not seen(row.created_modseq, row):
            if not row.destroyed:
                created.append(row.id)
        elif row.destroyed:
            destroyed.append(row.id)
        else:
            updated.append(row.id)
    out = {
        "accountId": a["accountId"],
        "oldState": a["sinceState"],
        "newState": new_state,
        "hasMoreChanges": more,
        "created": created,
        "updated": updated,
        "destroyed": destroyed,
    }
    if dt.count_properties:
        updated_ids = set(updated)
        counts_only = bool(updated) and all(
            seen(r.props_modseq, r) for r in rows if r.id in updated_ids
        )
        out["updatedProperties"] = list(dt.count_properties) if counts_only else None
    return out
