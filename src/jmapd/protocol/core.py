"""The core capability (RFC 8620 §2), Core/echo (§4) and Blob/copy (§6.3)."""

from __future__ import annotations

import time
from typing import Any

from ..config import Config
from .blobs import read_blob, stored_blob
from .engine.args import MISSING, parse_args
from .engine.query import COLLATIONS
from .errors import SetError, invalid_arguments
from .registry import CORE, REGISTRY, Capability, Context
from .values import ID_KIND, STRING, ListOf


def core_capability(config: Config) -> dict[str, Any]:
    return {
        "maxSizeUpload": config.max_size_upload,
        "maxConcurrentUpload": config.max_concurrent_upload,
        "maxSizeRequest": config.max_size_request,
        "maxConcurrentRequests": config.max_concurrent_requests,
        "maxCallsInRequest": config.max_calls_in_request,
        "maxObjectsInGet": config.max_objects_in_get,
        "maxObjectsInSet": config.max_objects_in_set,
        "collationAlgorithms": sorted(COLLATIONS),
    }


# The core is not listed among an account's capabilities: every account has it.
REGISTRY.capability(Capability(CORE, core_capability, lambda access: None))


@REGISTRY.method("Core/echo", CORE, needs_store=False, account_argument=None)
def echo(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return args


BLOB_COPY_ARGS = {
    "fromAccountId": (ID_KIND, MISSING),
    "accountId": (ID_KIND, MISSING),
    "blobIds": (ListOf(STRING), MISSING),
}


@REGISTRY.method("Blob/copy", CORE, writes=True)
def blob_copy(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    a = parse_args(args, BLOB_COPY_ARGS)
    ctx.account(a["fromAccountId"], error="fromAccount")
    if a["fromAccountId"] == a["accountId"]:
        raise invalid_arguments("fromAccountId and accountId must differ")
    user = ctx.user.account_id
    found: dict[str, tuple[str, int] | None] = {}  # blob id → stored blob id, size
    with ctx.read(a["fromAccountId"]) as txn:
        for blob_id in a["blobIds"]:
            size = txn.blob_size(blob_id, user)
            if size is not None:
                found[blob_id] = (blob_id, size)
                continue
            data = read_blob(ctx.blobs, txn, blob_id, user)  # e.g. an Email's body part
            if data is None:
                found[blob_id] = None
                continue
            kept = stored_blob(ctx.blobs, blob_id, data)
            ctx.keep(kept, data)
            found[blob_id] = (kept, len(data))
    copied: dict[str, str] = {}
    not_copied: dict[str, Any] = {}
    with ctx.write(a["accountId"]) as txn:
        for blob_id, stored in found.items():
            if stored is None:
                not_copied[blob_id] = SetError("notFound", f"no blob {blob_id}").to_json()
            else:
                # Like an upload: it lives on only if a record in the account uses it.
                expires = time.time() + ctx.config.upload_ttl
                txn.add_upload(stored[0], stored[1], user, expires)
                copied[blob_id] = stored[0]
    return {
        "fromAccountId": a["fromAccountId"],
        "accountId": a["accountId"],
        "copied": copied or None,
        "notCopied": not_copied or None,
    }
