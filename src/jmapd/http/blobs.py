"""Upload and download of binary data (RFC 8620 §6.1, §6.2)."""

from __future__ import annotations

import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ..protocol.blobs import derived_from, read_blob
from ..protocol.errors import MethodError, RequestError
from ..protocol.registry import User

if TYPE_CHECKING:
    from .app import Server

# RFC 9110 §8.3.1 media-type, in ASCII only (fullmatch: no control character, no line break).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))?)*")


def _account(server: Server, user: User, account_id: str, writes: bool) -> None:
    try:
        server.context(user, frozenset()).account(account_id, writes=writes)
    except MethodError as e:
        status = 404 if e.type == "accountNotFound" else 403
        raise RequestError("about:blank", status, e.description or e.type) from None


async def upload(server: Server, user: User, request: Request, data: bytes) -> dict[str, Any]:
    account_id = request.path_params["accountId"]
    _account(server, user, account_id, writes=True)
    media_type = request.headers.get("content-type", "application/octet-stream")
    if not MEDIA_TYPE.fullmatch(media_type):
        media_type = "application/octet-stream"  # never sniffed from the content

    def store() -> str:
        blob_id = server.blobs.put(data)
        with server.store.write(account_id) as txn:
            expires = time.time() + server.config.upload_ttl
            txn.add_upload(blob_id, len(data), user.account_id, expires)
        return blob_id

    blob_id = await anyio.to_thread.run_sync(store)
    return {"accountId": account_id, "blobId": blob_id, "type": media_type, "size": len(data)}


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact name in RFC 8187 encoding."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    encoded = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


async def download(server: Server, user: User, request: Request) -> Response:
    account_id, blob_id = request.path_params["accountId"], request.path_params["blobId"]
    _account(server, user, account_id, writes=False)

    media_type = request.query_params.get("type") or "application/octet-stream"
    if not MEDIA_TYPE.fullmatch(media_type):
        raise RequestError("about:blank", 400, f"type {media_type!r} is not a media type")

    def find() -> str | bytes | None:
        """The stored blob's file, or a derived blob's bytes."""
        with server.store.read(account_id) as txn:
            if derived_from(blob_id) is not None:
                return read_blob(server.blobs, txn, blob_id, user.account_id)
            if txn.blob_size(blob_id, user.account_id) is None:
                return None
        return server.blobs.path(blob_id)

    found = await anyio.to_thread.run_sync(find)
    if found is None:
        raise RequestError("about:blank", 404, f"no blob {blob_id} in this account")
    headers = {
        # Exactly the type asked for (no charset added), and never sniffed by a browser.
        "Content-Type": media_type,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition(request.path_params["name"]),
        "Cache-Control": "private, immutable, max-age=31536000",
        "ETag": f'"{blob_id}"',
    }
    if isinstance(found, bytes):
        return Response(found, headers=headers)
    return FileResponse(found, headers=headers)
