"""The SQLite backend: one database file in WAL mode, one connection per thread."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .base import Busy
from .sql import SQLStore


def _is_busy(error: BaseException) -> bool:
    """A lock the busy timeout did not see released."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


CHECKPOINT_INLINE = 50_000  # pages (4 KiB): about 200 MB


class SQLiteStore(SQLStore):
    """Everything in one SQLite file (WAL, synchronous=FULL: a commit is on disk)."""

    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout: float = 30) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.migrate()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
        )
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        # Commits do not checkpoint (checkpoint() does, off the request path); past a WAL
        # of CHECKPOINT_INLINE pages they do again, should the checkpoints stop.
        db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_INLINE}")
        db.create_function("GREATEST", 2, max, deterministic=True)
        return db

    @property
    def db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: writers are serialised before they read.
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as e:
            if _is_busy(e):
                raise Busy(str(e)) from e
            raise

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        with open(self.path.parent / f".{name}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database, without waiting for readers."""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
