"""Email/parse (RFC 8621 §4.9): blobs read as messages, shown as Emails, stored nowhere."""

from __future__ import annotations

import time
from typing import Any

from ...mail import parse_message
from ...protocol.engine.args import MISSING, parse_args, request_too_large
from ...protocol.registry import REGISTRY, Context
from ...protocol.values import ID_KIND, STRING, ListOf, Nullable
from ..mailbox import MAIL
from .view import BODY_ARGS, PARSE_DEFAULT, View

PARSE_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "blobIds": (ListOf(ID_KIND), MISSING),
    "properties": (Nullable(ListOf(STRING)), None),
    **BODY_ARGS,
}
# §4.9: what a parsed Email has no value for.
UNSTORED = {"id": None, "mailboxIds": None, "keywords": None, "receivedAt": None,
            "threadId": None}  # fmt: skip


@REGISTRY.method("Email/parse", MAIL)
def email_parse(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    a = parse_args(args, PARSE_ARGS, ctx.resolve_creation_id)
    view = View.from_args(a, PARSE_DEFAULT)
    request_too_large(len(a["blobIds"]), ctx.config.max_objects_in_get, "blobIds")
    user = ctx.user.account_id
    with ctx.read(a["accountId"]) as txn:
        found = {b: txn.blob_size(b, user) is not None for b in dict.fromkeys(a["blobIds"])}
    parsed: dict[str, Any] = {}
    part_blobs: dict[str, bytes] = {}
    for blob_id in (b for b, ok in found.items() if ok):
        raw = ctx.blobs.read(blob_id)
        if raw is None:
            found[blob_id] = False
            continue
        message = parse_message(raw)

        def part_blob(part_id: str, message: Any = message) -> str:
            content = message.part_content(part_id)
            part_id_blob = ctx.blobs.put(content)
            part_blobs[part_id_blob] = content
            return part_id_blob

        metadata = UNSTORED | {"blobId": blob_id, "size": len(raw)}
        parsed[blob_id] = view.email(message, metadata, part_blob)
    if part_blobs:
        # The parts of a parsed message are downloadable by whoever parsed it, like uploads.
        with ctx.write(a["accountId"]) as txn:
            for blob_id, content in part_blobs.items():
                txn.add_upload(blob_id, len(content), user, time.time() + ctx.config.upload_ttl)
    return {
        "accountId": a["accountId"],
        "parsed": parsed or None,
        "notParsable": None,
        "notFound": [b for b, ok in found.items() if not ok] or None,
    }
