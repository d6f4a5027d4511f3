"""Email/parse (RFC 8621 §4.9): blobs read as messages, shown as Emails, stored nowhere."""

from __future__ import annotations

from functools import partial
from typing import Any

from ...mail import parse_message
from ...protocol.blobs import read_blob
from ...protocol.engine.args import MISSING, parse_args, request_too_large
from ...protocol.registry import REGISTRY, Context
from ...protocol.values import ID_KIND, STRING, ListOf, Nullable
from ..mailbox import MAIL
from .store import part_blob_id
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
    parsed: dict[str, Any] = {}
    not_found: list[str] = []
    for blob_id in dict.fromkeys(a["blobIds"]):
        with ctx.read(a["accountId"]) as txn:
            raw = read_blob(ctx.blobs, txn, blob_id, user)
        if raw is None:
            not_found.append(blob_id)
            continue
        # Its parts' blobs are derived from it: readable by whoever may read it, and nothing
        # is written (the account may be one the caller may only read).
        metadata = UNSTORED | {"blobId": blob_id, "size": len(raw)}
        part_blob = partial(part_blob_id, blob_id)
        parsed[blob_id] = view.email(parse_message(raw), metadata, part_blob)
    return {
        "accountId": a["accountId"],
        "parsed": parsed or None,
        "notParsable": None,
        "notFound": not_found or None,
    }
