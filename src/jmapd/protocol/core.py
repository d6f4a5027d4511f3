"""The core capability (RFC 8620 §2), Core/echo (§4) and Blob/copy (§6.3)."""

from __future__ import annotations

import time
from typing import Any

from ..config import Config
from .engine.args import MISSING, parse_args
from .engine.query import COLLATIONS
from .errors import SetError
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
    with ctx.read(a["fromAccountId"]) as txn:
        sizes = {b: txn.blob_size(b, ctx.user.account_id) for b in a["blobIds"]}
    copied, not_copied = {}, {}
    with ctx.write(a["accountId"]) as txn:
        for blob_id, size in sizes.items():
            if size is None:
                not_copied[blob_id] = SetError("notFound", f"no blob {blob_id}").to_json()
            else:
                # Like an upload: it lives on only if a record in the account uses it.
                expires = time.time() + ctx.config.upload_ttl
                txn.add_upload(blob_id, size, ctx.user.account_id, expires)
                copied[blob_id] = blob_id
    return {
        "fromAccountId": a["fromAccountId"],
        "accountId": a["accountId"],
        "copied": copied or None,
        "notCopied": not_copied or None,
    }
