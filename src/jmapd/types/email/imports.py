"""Email/import (RFC 8621 §4.8): uploaded messages added to the account."""

from __future__ import annotations

from functools import partial
from typing import Any

from ...protocol.blobs import read_blob, stored_blob
from ...protocol.engine.args import MISSING, parse_args, request_too_large
from ...protocol.engine.set import one_record, prepare
from ...protocol.errors import MethodError, SetError, invalid_properties
from ...protocol.registry import REGISTRY, Context
from ...protocol.values import ID_KIND, OBJECT, STRING, UTC_DATE_KIND, MapOf, Nullable
from ...store.base import Transaction
from ..mailbox import MAIL
from .email import KEYWORDS, MAILBOX_IDS, add_email, checked_metadata
from .store import Parsed, parse

IMPORT_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "ifInState": (Nullable(STRING), None),
    "emails": (MapOf(STRING, OBJECT), MISSING),
}
IMPORT_KINDS = {"blobId": ID_KIND, "mailboxIds": MAILBOX_IDS, "keywords": KEYWORDS,
                "receivedAt": UTC_DATE_KIND}  # fmt: skip


@REGISTRY.method("Email/import", MAIL, writes=True)
def email_import(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    a = parse_args(args, IMPORT_ARGS)
    request_too_large(len(a["emails"]), ctx.config.max_objects_in_set, "emails")
    created, not_created = {}, {}
    # The slow work (reading and parsing each message) before the write lock is taken.
    prepared = {
        cid: prepare(partial(prepare_import, ctx, a["accountId"], given))
        for cid, given in a["emails"].items()
    }
    with ctx.write(a["accountId"]) as txn:
        old_state = txn.state("Email")
        if a["ifInState"] is not None and a["ifInState"] != str(old_state):
            raise MethodError("stateMismatch", f"the state is {old_state}")
        for creation_id, given in a["emails"].items():
            try:
                with one_record(txn):  # one bad message fails only itself
                    created[creation_id] = import_one(ctx, txn, given, prepared[creation_id])
            except SetError as e:
                not_created[creation_id] = e.to_json()
            else:
                ctx.created_ids[creation_id] = created[creation_id]["id"]
        new_state = txn.state("Email")
    return {
        "accountId": a["accountId"],
        "oldState": str(old_state),
        "newState": str(new_state),
        "created": created or None,
        "notCreated": not_created or None,
    }


def prepare_import(ctx: Context, account_id: str, given: dict[str, Any]) -> Parsed | None:
    """Read and parse the message (None when the blobId is not even an Id: the transaction
    reports it with the rest)."""
    blob_id = given.get("blobId")
    if not isinstance(blob_id, str):
        return None
    with ctx.read(account_id) as txn:
        raw = read_blob(ctx.blobs, txn, blob_id, ctx.user.account_id)
    if raw is None:
        raise invalid_properties(f"no blob {blob_id} in this account", "blobId")
    # A message attached to another (a derived blob) is stored in its own right.
    stored = stored_blob(ctx.blobs, blob_id, raw)
    if stored != blob_id:
        ctx.keep(stored, raw)
    return parse(stored, raw)


def import_one(
    ctx: Context, txn: Transaction, given: dict[str, Any], prepared: Parsed | SetError | None
) -> dict[str, Any]:
    metadata = checked_metadata(ctx, txn, given, IMPORT_KINDS)
    if "blobId" not in metadata:
        raise invalid_properties("blobId is required", "blobId")
    return add_email(txn, prepared, metadata)
