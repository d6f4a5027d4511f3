"""Foo/get (RFC 8620 §5.1)."""

from __future__ import annotations

from typing import Any

from ..errors import MethodError, invalid_arguments
from ..registry import Context
from ..values import ID_KIND, STRING, ListOf, Nullable
from .args import MISSING, request_too_large
from .datatype import DataType, answer, method_args

GET_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "ids": (Nullable(ListOf(ID_KIND)), None),
    "properties": (Nullable(ListOf(STRING)), None),
}


def get(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    a = method_args(ctx, dt, "get", GET_ARGS, args)
    properties = a["properties"]
    if properties is not None:
        unknown = [p for p in properties if dt.property(p) is None]
        if unknown:
            raise invalid_arguments(f"unknown properties: {', '.join(unknown)}")
        private = [p for p in properties if p in dt.private]
        if private:
            raise MethodError("forbidden", f"{', '.join(private)} may not be fetched")
        properties = ["id", *(p for p in dict.fromkeys(properties) if p != "id")]
    ids = a["ids"]
    if ids is not None:
        ids = list(dict.fromkeys(ids))
        request_too_large(len(ids), ctx.config.max_objects_in_get, "ids")
    with ctx.read(a["accountId"]) as txn:
        state = txn.state(dt.name)
        records = {id: r for id, r in txn.get(dt.name, ids).items() if dt.hooks.visible(ctx, r)}
        if ids is None:
            request_too_large(len(records), ctx.config.max_objects_in_get, "records")
        for id, record in records.items():
            record["id"] = id
        dt.hooks.present(ctx, txn, records)
    order = ids if ids is not None else sorted(records)
    return answer(dt, {
        "accountId": a["accountId"],
        "state": str(state),
        "list": [shown(dt, records[id], properties) for id in order if id in records],
        "notFound": [id for id in ids if id not in records] if ids is not None else [],
    }, "state")  # fmt: skip


def shown(dt: DataType, record: dict[str, Any], properties: list[str] | None) -> dict[str, Any]:
    """A record as /get shows it: the asked properties (all by default), with defaults for
    those not stored; a property absent unless set (ABSENT) is left out."""
    out = {}
    for name in dt.shown_properties(record) if properties is None else properties:
        if name in record:
            out[name] = record[name]
        else:
            prop = dt.property(name)
            if prop is not None and not prop.absent:
                out[name] = prop.default_value()
    return out
