"""Foo/changes (RFC 8620 §5.2)."""

from __future__ import annotations

from typing import Any

from ..errors import MethodError
from ..registry import Context
from ..values import ID_KIND, POSITIVE_INT, STRING, Nullable
from .args import MISSING, parse_state
from .datatype import DataType, method_args

CHANGES_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "sinceState": (STRING, MISSING),
    "maxChanges": (Nullable(POSITIVE_INT), None),
}


def changes(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    a = method_args(ctx, dt, "changes", CHANGES_ARGS, args)
    since = parse_state(a["sinceState"])
    limit = min(a["maxChanges"] or ctx.config.max_changes, ctx.config.max_changes)
    with ctx.read(a["accountId"]) as txn:
        current = txn.state(dt.name)
        if since > current or since < txn.floor(dt.name):
            raise MethodError("cannotCalculateChanges", f"state {since} is not known any more")
        rows = txn.changes(dt.name, since, limit + 1)
    new_state, more = current, False
    if len(rows) > limit:
        # Never split one modseq across two responses: the client would skip the rest.
        cut = rows[limit].modseq
        rows = [r for r in rows if r.modseq < cut]
        if not rows:
            raise MethodError(
                "cannotCalculateChanges",
                f"one change touched more than {limit} records; ask with a larger maxChanges",
            )
        new_state, more = rows[-1].modseq, True
    created, updated, destroyed = [], [], []
    for row in rows:
        if row.created_modseq > since:
            if not row.destroyed:
                created.append(row.id)
        elif row.destroyed:
            destroyed.append(row.id)
        else:
            updated.append(row.id)
    out = {
        "accountId": a["accountId"],
        "oldState": a["sinceState"],
        "newState": str(new_state),
        "hasMoreChanges": more,
        "created": created,
        "updated": updated,
        "destroyed": destroyed,
    }
    if dt.count_properties:
        updated_ids = set(updated)
        counts_only = bool(updated) and all(
            r.props_modseq <= since for r in rows if r.id in updated_ids
        )
        out["updatedProperties"] = list(dt.count_properties) if counts_only else None
    return out
