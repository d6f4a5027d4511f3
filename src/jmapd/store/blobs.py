"""Blob bytes on the filesystem, content-addressed: data/blobs/ab/<sha256>; and the
housekeeping that removes the files no account references any more.

One level of 256 directories: with two (ab/cd/, before) nearly every file of a small store had
a directory of its own, a 4 KiB block each (39 of 205 MB for 10,000 messages). A directory in
the old layout is flattened when the store is opened.

A file is removed only when no row references its blob, and never while young: an upload of
the same bytes (which refreshes the file's mtime, or writes it anew) may be about to reference
it. It is renamed aside first and checked then, so an upload racing the removal either finds
the file gone and writes it again, or made it young in time to keep it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from .base import BlobStore

log = logging.getLogger("jmapd.blobs")

BLOB_ID = re.compile(r"B[0-9a-f]{64}")
LAYOUT_MARK = ".one-level"  # the blob directory holds files one level deep (ab/<sha256>)


def blob_id_for(data: bytes) -> str:
    return "B" + hashlib.sha256(data).hexdigest()


class Ensuring:
    """BlobStore.ensure and read_many, for any store with put, exists and read."""

    def put(self, data: bytes) -> str:
        raise NotImplementedError

    def exists(self, blob_id: str) -> bool:
        raise NotImplementedError

    def read(self, blob_id: str) -> bytes | None:
        raise NotImplementedError

    def read_many(self, blob_ids: list[str]) -> dict[str, bytes]:
        """One by one; a store with round trips does better."""
        return {b: data for b in dict.fromkeys(blob_ids) if (data := self.read(b)) is not None}

    def ensure(self, blob_id: str, data: bytes) -> None:
        if not self.exists(blob_id):
            self.put(data)


class FileBlobStore(Ensuring):
    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        root.mkdir(parents=True, exist_ok=True)
        self._flatten()

    def _file(self, blob_id: str) -> str:
        digest = blob_id[1:]
        return f"{self._root}/{digest[:2]}/{digest}"

    def _flatten(self) -> None:
        """Move the files of the old layout (ab/cd/<sha256>) up into ab/, once: a mark in
        the directory says it is done (and a new directory is marked at once). Renames
        within a file system, so a file is always in one place or the other; a process
        killed midway, or two at once, leave the rest to the next. Temporary and set-aside
        files move with the others (the sweep judges them by their names)."""
        mark = self.root / LAYOUT_MARK
        if mark.exists():
            return
        moved = 0
        for first in sorted(e.path for e in os.scandir(self.root) if e.is_dir()):
            olds = [e.path for e in os.scandir(first) if e.is_dir(follow_symlinks=False)]
            for second in olds:
                moved += self._move_up(second, first)
            if olds:
                _sync_directory(Path(first))
            for second in olds:
                # gone already, or written into by another process meanwhile
                with contextlib.suppress(OSError):
                    os.rmdir(second)
        mark.touch()
        _sync_directory(self.root)
        if moved:
            log.info("moved %d blob files to the one-level layout", moved)

    @staticmethod
    def _move_up(second: str, first: str) -> int:
        """Move the files of `second` into `first`; those another process moved (or the
        directory it removed) are passed over."""
        moved = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(second):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(entry.path, os.path.join(first, entry.name))
                    moved += 1
        return moved

    def _path(self, blob_id: str) -> Path:
        return Path(self._file(blob_id))

    def put(self, data: bytes) -> str:
        """Store bytes durably (fsync before rename) and return their blob id."""
        blob_id = blob_id_for(data)
        path = self._path(blob_id)
        try:
            os.utime(path)  # a fresh mtime keeps a concurrent sweep from removing it
            return blob_id
        except FileNotFoundError:
            pass  # not there, or being removed: written anew
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
        _sync_directory(path.parent)
        return blob_id

    def exists(self, blob_id: str) -> bool:
        return self.path(blob_id) is not None

    def path(self, blob_id: str) -> str | None:
        if not BLOB_ID.fullmatch(blob_id):
            return None
        path = self._path(blob_id)
        return str(path) if path.exists() else None

    def read(self, blob_id: str) -> bytes | None:
        if not BLOB_ID.fullmatch(blob_id):
            return None
        try:
            # Unbuffered, from a str path: Email/get reads fifty at a time, and pathlib and
            # a buffer took 10 us of each 6 KB read against 4.
            with open(self._file(blob_id), "rb", buffering=0) as f:
                return f.readall()
        except FileNotFoundError:
            return None

    def remove_unused(self, blob_id: str, referenced: Callable[[], bool], min_age: float) -> str:
        """Remove a blob's file unless it is referenced or was written (or written again) in
        the last min_age seconds: "removed", "referenced", "young" or "missing"."""
        if not BLOB_ID.fullmatch(blob_id):
            return "missing"
        path = self._path(blob_id)
        aside = path.with_name(path.name + ".removing")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return "missing"
        try:
            if aside.stat().st_mtime > time.time() - min_age:
                outcome = "young"
            elif referenced():
                outcome = "referenced"
            else:
                aside.unlink()
                return "removed"
        except BaseException:
            self._restore(aside, path)
            raise
        self._restore(aside, path)
        return outcome

    @staticmethod
    def _restore(aside: Path, path: Path) -> None:
        if path.exists():  # written anew meanwhile: the same bytes
            aside.unlink(missing_ok=True)
        else:
            os.rename(aside, path)

    def blob_ids(self, stale_before: float) -> Iterator[tuple[str, float]]:
        """Every stored blob id with its file's mtime (for a sweep of the directory). What a
        killed process left older than `stale_before` is tidied on the way: a half-written
        temporary file is removed, a file set aside for removal is put back (to be judged
        again)."""
        for first in sorted(self.root.iterdir()):
            for path in sorted(first.iterdir()) if first.is_dir() else ():
                try:
                    mtime = path.stat().st_mtime
                except FileNotFoundError:
                    continue
                if path.name.startswith(".tmp-") and mtime < stale_before:
                    path.unlink(missing_ok=True)
                elif path.name.endswith(".removing") and mtime < stale_before:
                    self._restore(path, path.with_name(path.name.removesuffix(".removing")))
                elif BLOB_ID.fullmatch("B" + path.name):
                    yield "B" + path.name, mtime


def _sync_directory(path: Path) -> None:
    """Make the names written into a directory durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class References(Protocol):
    """What housekeeping asks the store (store/sql.py)."""

    def orphaned_blobs(self, limit: int = 1000) -> list[str]: ...
    def forget_orphans(self, blob_ids: list[str]) -> None: ...
    def referenced_blobs(self, blob_ids: list[str]) -> set[str]: ...


def _asker(store: References, blob_id: str) -> Callable[[], bool]:
    return lambda: bool(store.referenced_blobs([blob_id]))


def collect_orphans(
    store: References, blobs: BlobStore, min_age: float, only: list[str] | None = None
) -> int:
    """Remove the files of the blobs queued as orphans (store.release_blob, expired uploads,
    removed accounts), or of those `only` among them; those still young stay queued.
    Returns how many were removed."""
    removed = 0
    for blob_id in store.orphaned_blobs() if only is None else only:
        outcome = blobs.remove_unused(blob_id, _asker(store, blob_id), min_age)
        removed += outcome == "removed"
        if outcome != "young":
            store.forget_orphans([blob_id])
    return removed


def sweep(store: References, blobs: BlobStore, min_age: float, remove: bool = True) -> int:
    """Remove every blob file older than min_age that no row references: what a failed or
    killed transaction wrote and never referenced. Reads the whole directory. Without
    `remove`, only counts them."""
    removed = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal removed
        used = store.referenced_blobs(batch)
        for blob_id in batch:
            if blob_id in used:
                continue
            if not remove:
                removed += 1
                continue
            outcome = blobs.remove_unused(blob_id, _asker(store, blob_id), min_age)
            removed += outcome == "removed"
        batch.clear()

    cutoff = time.time() - min_age
    for blob_id, mtime in blobs.blob_ids(stale_before=cutoff if remove else 0):
        if mtime < cutoff:
            batch.append(blob_id)
            if len(batch) >= 500:
                flush()
    if batch:
        flush()
    if removed and remove:
        log.info("removed %d blob files no account references", removed)
    return removed
