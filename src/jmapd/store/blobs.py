"""Blob bytes on the filesystem, content-addressed: data/blobs/ab/cd/<sha256>."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

BLOB_ID = re.compile(r"B[0-9a-f]{64}")


def blob_id_for(data: bytes) -> str:
    return "B" + hashlib.sha256(data).hexdigest()


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, blob_id: str) -> Path:
        digest = blob_id[1:]
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store bytes durably (fsync before rename) and return their blob id."""
        blob_id = blob_id_for(data)
        path = self._path(blob_id)
        if path.exists():
            os.utime(path)  # a fresh mtime keeps a concurrent sweep from removing it
            return blob_id
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return blob_id

    def path(self, blob_id: str) -> str | None:
        if not BLOB_ID.fullmatch(blob_id):
            return None
        path = self._path(blob_id)
        return str(path) if path.exists() else None

    def read(self, blob_id: str) -> bytes | None:
        path = self.path(blob_id)
        return Path(path).read_bytes() if path else None

    def remove_unused(self, blob_id: str, min_age: float) -> None:
        """Remove a blob no account references, unless it was written in the last min_age s."""
        path = self.path(blob_id)
        if path and os.stat(path).st_mtime < time.time() - min_age:
            Path(path).unlink(missing_ok=True)
