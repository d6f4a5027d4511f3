"""Email/get (RFC 8621 §4.2): from the stored summary; the blob is read only for bodyValues."""

from __future__ import annotations

from functools import partial
from typing import Any

from ...protocol.engine.args import parse_args, request_too_large
from ...protocol.engine.get import GET_ARGS
from ...protocol.registry import REGISTRY, Context
from ..mailbox import MAIL
from .store import StoredMessage
from .view import BODY_ARGS, GET_DEFAULT, View

METADATA = ("blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt")


@REGISTRY.method("Email/get", MAIL)
def email_get(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    a = parse_args(args, GET_ARGS | BODY_ARGS, ctx.resolve_creation_id)
    view = View.from_args(a, GET_DEFAULT)
    if "id" not in view.properties:
        view.properties.insert(0, "id")  # RFC 8620 §5.1: always returned
    ids = None if a["ids"] is None else list(dict.fromkeys(a["ids"]))
    request_too_large(len(ids or ()), ctx.config.max_objects_in_get, "ids")
    with ctx.read(a["accountId"]) as txn:
        state = txn.state("Email")
        records = txn.get("Email", ids)
    request_too_large(len(records), ctx.config.max_objects_in_get, "Emails")
    found = []
    for id in ids if ids is not None else sorted(records):
        record = records.get(id)
        if record is None:
            continue
        message = StoredMessage(record["summary"], partial(ctx.blobs.read, record["blobId"]))
        metadata = {"id": id, **{k: record[k] for k in METADATA}}
        found.append(view.email(message, metadata, message.part_blob))
    return {
        "accountId": a["accountId"],
        "state": str(state),
        "list": found,
        "notFound": [id for id in ids if id not in records] if ids is not None else [],
    }
