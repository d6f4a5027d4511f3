"""Foo/set (RFC 8620 §5.3): create, update with PatchObject, destroy; one transaction."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ..errors import MethodError, SetError, invalid_properties
from ..registry import Context
from ..values import ID_KIND, OBJECT, STRING, ListOf, MapOf, Nullable
from .args import MISSING, request_too_large
from .datatype import REQUIRED, DataType, Record, method_args

if TYPE_CHECKING:
    from ...store.base import Transaction

SET_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "ifInState": (Nullable(STRING), None),
    "create": (Nullable(MapOf(STRING, OBJECT)), None),
    "update": (Nullable(MapOf(STRING, OBJECT)), None),
    "destroy": (Nullable(ListOf(STRING)), None),
}


def set_(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    a = method_args(ctx, dt, "set", SET_ARGS, args)
    create, update, destroy = a["create"] or {}, a["update"] or {}, a["destroy"] or []
    request_too_large(
        len(create) + len(update) + len(destroy), ctx.config.max_objects_in_set, "objects"
    )
    with ctx.write(a["accountId"]) as txn:
        old_state = txn.state(dt.name)
        if a["ifInState"] is not None and a["ifInState"] != str(old_state):
            raise MethodError("stateMismatch", f"the state is {old_state}, not {a['ifInState']}")
        result = apply_set(ctx, dt, txn, create, update, destroy)
        new_state = txn.state(dt.name)
    return {
        "accountId": a["accountId"],
        "oldState": str(old_state),
        "newState": str(new_state),
        **result,
    }


def apply_set(
    ctx: Context,
    dt: DataType,
    txn: Transaction,
    create: dict[str, Any],
    update: dict[str, Any],
    destroy: list[str],
) -> dict[str, Any]:
    """Creates, then updates, then destroys, each record on its own (§5.3)."""
    out: dict[str, Any] = {
        "created": {},
        "updated": {},
        "destroyed": [],
        "notCreated": {},
        "notUpdated": {},
        "notDestroyed": {},
    }
    for creation_id, given in create.items():
        try:
            out["created"][creation_id] = create_one(ctx, dt, txn, given)
        except SetError as e:
            out["notCreated"][creation_id] = e.to_json()
        else:
            ctx.created_ids[creation_id] = out["created"][creation_id]["id"]
    destroying = {resolve_id(ctx, id) for id in destroy}
    for key, patch in update.items():
        id = resolve_id(ctx, key)
        try:
            if id in destroying:
                raise SetError("willDestroy", "this record is destroyed in the same call")
            out["updated"][id] = update_one(ctx, dt, txn, id, patch)
        except SetError as e:
            out["notUpdated"][id] = e.to_json()
    for key in destroy:
        id = resolve_id(ctx, key)
        try:
            destroy_one(ctx, dt, txn, id)
            out["destroyed"].append(id)
        except SetError as e:
            out["notDestroyed"][id] = e.to_json()
    return {k: v or None for k, v in out.items()}


def resolve_id(ctx: Context, id: str) -> str:
    """An id, or `#creationId` replaced by the id created for it (RFC 8620 §5.3)."""
    if id.startswith("#"):
        return ctx.created_ids.get(id[1:], id)
    return id


def check_properties(
    ctx: Context,
    dt: DataType,
    record: Record,
    names: list[str],
    problems: dict[str, str] | None = None,
) -> None:
    """Check the kinds of the named properties; all bad ones, with the `problems` (name →
    reason) already found, are reported together (§5.3: the SetError lists *all*)."""
    problems = dict(problems or {})
    for name in names:
        try:
            record[name] = dt.by_name[name].kind.check(record[name], ctx.resolve_creation_id)
        except ValueError as e:
            problems[name] = str(e)
    if problems:
        description = "; ".join(f"{name} {why}" for name, why in problems.items())
        raise invalid_properties(description, *problems)


def create_one(ctx: Context, dt: DataType, txn: Transaction, given: dict[str, Any]) -> Record:
    own = dt.hooks.create_record(ctx, txn, given)
    if own is not None:
        return own
    problems: dict[str, str] = {}
    for name in given:
        prop = dt.by_name.get(name)
        if prop is None:
            problems[name] = f"is not a {dt.name} property"
        elif prop.server_set:
            problems[name] = "is set by the server"
    for p in dt.properties:
        if p.default is REQUIRED and not p.server_set and p.name not in given:
            problems[p.name] = "is required"
    record = copy.deepcopy(given)
    check_properties(ctx, dt, record, [k for k in given if k not in problems], problems)
    for p in dt.properties:
        if p.name not in record and p.name != "id":
            record[p.name] = p.default_value()
    dt.hooks.create(ctx, txn, record)
    id = record.pop("id", None) or txn.new_id()
    txn.put(dt.name, id, record)
    shown = {**record, "id": id}
    dt.hooks.present(ctx, txn, {id: shown})  # computed properties, as /get would show them
    return {k: v for k, v in shown.items() if k not in given}


def apply_patch(current: Record, patch: dict[str, Any], dt: DataType) -> tuple[Record, set[str]]:
    """Apply a PatchObject (§5.3); return the new record and the top-level properties touched."""
    for path in patch:
        parts = path.split("/")
        for end in range(1, len(parts)):
            prefix = "/".join(parts[:end])
            if prefix in patch:
                raise SetError("invalidPatch", f"{prefix!r} is a prefix of {path!r}")
    new = copy.deepcopy(current)
    touched: set[str] = set()
    for path, value in patch.items():
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")]
        name = tokens[0]
        if name not in dt.by_name:
            raise invalid_properties(f"unknown property {name!r}", name)
        touched.add(name)
        if len(tokens) == 1:
            prop = dt.by_name[name]
            new[name] = prop.default_value() if value is None else value
            continue
        parent = new.get(name)
        for token in tokens[1:-1]:
            if not isinstance(parent, dict) or token not in parent:
                raise SetError("invalidPatch", f"{path!r} goes through a missing object")
            parent = parent[token]
        if not isinstance(parent, dict):
            raise SetError("invalidPatch", f"{path!r} does not point into an object")
        if value is None:
            parent.pop(tokens[-1], None)
        else:
            parent[tokens[-1]] = value
    return new, touched


def update_one(
    ctx: Context, dt: DataType, txn: Transaction, id: str, patch: dict[str, Any]
) -> Record | None:
    current = txn.get(dt.name, [id]).get(id)
    if current is None:
        raise SetError("notFound", f"no {dt.name} {id!r}")
    current["id"] = id
    new, touched = apply_patch(current, patch, dt)
    fixed = [
        k
        for k in touched
        if (dt.by_name[k].server_set or dt.by_name[k].immutable) and new[k] != current.get(k)
    ]
    if fixed:
        raise invalid_properties(f"cannot be changed: {', '.join(sorted(fixed))}", *sorted(fixed))
    check_properties(ctx, dt, new, sorted(touched))
    requested = copy.deepcopy(new)
    dt.hooks.update(ctx, txn, current, new)
    new.pop("id", None)
    current.pop("id", None)
    if new != current:
        txn.put(dt.name, id, new)
    # §5.3: what changed in a way the patch did not ask for, even if the patch named it.
    changed = {k: v for k, v in new.items() if requested.get(k) != v}
    return changed or None


def destroy_one(ctx: Context, dt: DataType, txn: Transaction, id: str) -> None:
    current = txn.get(dt.name, [id]).get(id)
    if current is None:
        raise SetError("notFound", f"no {dt.name} {id!r}")
    current["id"] = id
    dt.hooks.destroy(ctx, txn, current)
    txn.destroy(dt.name, id)
