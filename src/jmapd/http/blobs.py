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
        server.blobs.ensure(blob_id, data)  # should a removal of the same bytes have raced
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
        """The stored blob's file, or its bytes (a derived blob, a store without files)."""
        with server.store.read(account_id) as txn:
            if derived_from(blob_id) is not None:
                return read_blob(server.blobs, txn, blob_id, user.account_id)
            if txn.blob_size(blob_id, user.account_id) is None:
                return None
        return server.blobs.path(blob_id) or server.blobs.read(blob_id)

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
        return ranged(found, request.headers.get("range"), headers)
    return FileResponse(found, headers=headers)


RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")


def ranged(data: bytes, requested: str | None, headers: dict[str, str]) -> Response:
    """RFC 9110 §14: one byte range of bytes held in memory, as FileResponse serves a file's
    (several ranges, or a malformed one, are answered with the whole)."""
    match = RANGE.fullmatch(requested.strip()) if requested else None
    size = len(data)
    if match is None or not (match[1] or match[2]):
        return Response(data, headers={**headers, "Accept-Ranges": "bytes"})
    if match[1]:
        start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
    else:
        start, end = max(size - int(match[2]), 0), size - 1
    if start >= size or start > end:
        return Response(
            b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"}
        )
    part = {**headers, "Content-Range": f"bytes {start}-{end}/{size}", "Accept-Ranges": "bytes"}
    return Response(data[start : end + 1], status_code=206, headers=part)
