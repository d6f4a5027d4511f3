"""Foo/copy (RFC 8620 §5.4): copy records from another account, then optionally destroy the
originals with an implicit Foo/set whose response follows."""

from __future__ import annotations

from functools import partial
from typing import Any

from ..errors import MethodError, SetError, invalid_arguments
from ..registry import Context, Response
from ..values import BOOLEAN, ID_KIND, OBJECT, STRING, MapOf, Nullable
from .args import MISSING, request_too_large
from .datatype import DataType, method_args
from .set import create_one, one_record, prepare, set_

COPY_ARGS = {
    "fromAccountId": (ID_KIND, MISSING),
    "ifFromInState": (Nullable(STRING), None),
    "accountId": (ID_KIND, MISSING),
    "ifInState": (Nullable(STRING), None),
    "create": (MapOf(STRING, OBJECT), MISSING),
    "onSuccessDestroyOriginal": (BOOLEAN, False),
    "destroyFromIfInState": (Nullable(STRING), None),
}


def copy_(ctx: Context, dt: DataType, args: dict[str, Any]) -> Response:
    a = method_args(ctx, dt, "copy", COPY_ARGS, args)
    if a["fromAccountId"] == a["accountId"]:
        raise invalid_arguments("fromAccountId and accountId must differ")
    source = ctx.account(
        a["fromAccountId"], writes=a["onSuccessDestroyOriginal"], error="fromAccount"
    )
    if dt.capability not in ctx.registry.account_capabilities(source):
        raise MethodError("fromAccountNotSupportedByMethod", f"no {dt.name} in that account")
    request_too_large(len(a["create"]), ctx.config.max_objects_in_set, "objects")
    with ctx.read(a["fromAccountId"]) as txn:
        from_state = txn.state(dt.name)
        if a["ifFromInState"] is not None and a["ifFromInState"] != str(from_state):
            raise MethodError("stateMismatch", f"the from-account state is {from_state}")
        wanted = [o.get("id") for o in a["create"].values() if isinstance(o.get("id"), str)]
        originals = txn.get(dt.name, wanted)
    for id, record in originals.items():
        record["id"] = id
    prepared = {id: prepare(partial(dt.hooks.prepare_copy, ctx, record))
                for id, record in originals.items()}  # fmt: skip
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    copied: list[str] = []
    with ctx.write(a["accountId"]) as txn:
        old_state = txn.state(dt.name)
        if a["ifInState"] is not None and a["ifInState"] != str(old_state):
            raise MethodError("stateMismatch", f"the state is {old_state}")
        for creation_id, given in a["create"].items():
            try:
                original = originals.get(given.get("id"))
                if original is None:
                    raise SetError("notFound", f"no {dt.name} {given.get('id')!r} to copy")
                overrides = {k: v for k, v in given.items() if k != "id"}
                with one_record(txn):
                    result = dt.hooks.copy_record(
                        ctx, txn, original, overrides, prepared[given["id"]]
                    )
                    if result is None:
                        settable = {
                            k: v
                            for k, v in original.items()
                            if (p := dt.property(k)) is not None and not p.server_set
                        }
                        result = create_one(ctx, dt, txn, settable | overrides)
            except SetError as e:
                not_created[creation_id] = e.to_json()
                continue
            created[creation_id] = {
                k: v
                for k, v in result.items()
                if k == "id" or (k in dt.by_name and dt.by_name[k].server_set)
            }
            ctx.created_ids[creation_id] = result["id"]
            copied.append(given["id"])
        new_state = txn.state(dt.name)
    responses: Response = [
        (
            f"{dt.name}/copy",
            {
                "fromAccountId": a["fromAccountId"],
                "accountId": a["accountId"],
                "oldState": str(old_state),
                "newState": str(new_state),
                "created": created or None,
                "notCreated": not_created or None,
            },
        )
    ]
    if a["onSuccessDestroyOriginal"] and copied:
        destroy = {"accountId": a["fromAccountId"], "destroy": copied}
        if a["destroyFromIfInState"] is not None:
            destroy["ifInState"] = a["destroyFromIfInState"]
        try:
            responses.append((f"{dt.name}/set", set_(ctx, dt, destroy)))
        except MethodError as e:
            responses.append(("error", e.to_json()))
    return responses
