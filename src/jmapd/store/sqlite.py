"""The SQLite backend: one database file in WAL mode, one connection per thread."""

from __future__ import annotations

import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .base import Busy
from .sql import SQLStore


def _is_busy(error: BaseException) -> bool:
    """A lock the busy timeout did not see released."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


CHECKPOINT_INLINE = 50_000  # pages (4 KiB): about 200 MB
WAL_KEEP = 4096  # pages (16 MiB) of WAL file kept for reuse when the WAL starts over
WAL_FORCE = 16384  # pages (64 MiB) of WAL past which a checkpoint has it start over
WAL_RESTART_TRIES = 25  # a checkpoint's tries (2 ms apart) to catch the WAL without readers


class _ProcessLock:
    """The file lock the writers of every process take turns on. A writer that finds it
    held waits in the kernel, which wakes it the moment the lock is released: polling for
    it instead lost nearly every race to the holder's next thread, so one worker's writers
    waited out the other's whole queue (set-seen on two workers, c=8: p99 62-69 ms polled,
    20-23 ms waited for). The wait runs on a thread of the process's own (a daemon, so a
    wait never holds up the exit) so that it can be given up after the timeout; a wait
    given up drops the lock if it gets it, on a file of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pid = -1  # a store inherited across fork() must not share the parent's lock
        self._file: TextIO | None = None
        self._waits: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def acquire(self, timeout: float) -> None:
        if self._pid != os.getpid() or self._file is None:
            self._pid, self._file = os.getpid(), open(self.path, "a")  # noqa: SIM115
            self._waits = queue.SimpleQueue()
            threading.Thread(target=self._wait_in_turn, name="jmapd-write-lock",
                             daemon=True).start()  # fmt: skip
        file = self._file
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited: Future[None] = Future()  # cancelled: given up

        def wait() -> None:
            try:
                fcntl.flock(file, fcntl.LOCK_EX)
            except OSError as e:  # told to the writer, unless it gave up
                if waited.set_running_or_notify_cancel():
                    waited.set_exception(e)
                return
            if waited.set_running_or_notify_cancel():
                waited.set_result(None)
            else:
                file.close()  # which releases the lock

        self._waits.put(wait)
        try:
            waited.result(timeout)
            return
        except TimeoutError:
            if not waited.cancel():  # the wait ended just now
                waited.result()
                return
        self._file = open(self.path, "a")  # noqa: SIM115
        raise Busy("another process held the database for too long")

    def _wait_in_turn(self) -> None:
        while True:
            self._waits.get()()

    def release(self) -> None:
        assert self._file is not None
        fcntl.flock(self._file, fcntl.LOCK_UN)


class SQLiteStore(SQLStore):
    """Everything in one SQLite file (WAL, synchronous=FULL: a commit is on disk)."""

    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout: float = 30) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._writers = threading.Lock()  # this process's writers, one at a time
        self._process_lock = _ProcessLock(path.parent / ".write.lock")
        self._wal_frames = -1  # at the last checkpoint
        self._opened: list[sqlite3.Connection] = []  # every thread's, for close()
        self._opening = threading.Lock()
        self._generation = 0  # a thread's connection from before close() is not used again
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
        db.execute(f"PRAGMA journal_size_limit = {WAL_KEEP * 4096}")  # when the WAL starts over
        db.create_function("GREATEST", 2, max, deterministic=True)
        with self._opening:
            self._opened.append(db)
        return db

    @property
    def db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or self._local.generation != self._generation:
            self._local.generation = self._generation
            db = self._local.db = self._connect()
        return db

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """Writers take turns here before SQLite's lock: threads on a lock that wakes the next
        at once, processes on a file lock (_ProcessLock). SQLite's own busy wait sleeps up to
        100 ms between tries: concurrent writers then waited in a convoy (a p99 of 115 ms for
        one-keyword Email/sets from 8 clients)."""
        if not self._writers.acquire(timeout=self.busy_timeout):
            raise Busy("other writers held the database for too long")
        try:
            self._process_lock.acquire(self.busy_timeout)
            try:
                yield
            finally:
                self._process_lock.release()
        finally:
            self._writers.release()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        if not write:
            with self._transaction_of(False) as db:
                yield db
            return
        with self._writer(), self._transaction_of(True) as db:
            yield db

    @contextmanager
    def _transaction_of(self, write: bool) -> Iterator[sqlite3.Connection]:
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
        """Copy what the WAL holds into the database, without waiting for readers (called
        once a second). The WAL starts over only at a moment no reader is in it, which under
        a steady stream of reads may not come (197 MB of it after the benchmark's runs,
        beside a 103 MB database), and its file never shrinks by itself. Past WAL_FORCE
        pages, have it start over at the first moment no reader is in it (a few tries that
        wait for nobody: a checkpoint that waits for readers makes new writers wait too, a
        tail of tens of ms; and it copies and syncs holding the writers' lock, so not more
        often); the next writer then cuts the file back to WAL_KEEP pages
        (journal_size_limit): not to nothing, as appending to the file makes each commit's
        fsync write its size too. A WAL past WAL_KEEP pages with no write since the last
        checkpoint is cut back to nothing."""
        frames = self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        quiet, self._wal_frames = frames == self._wal_frames, frames
        if frames <= (WAL_KEEP if quiet else WAL_FORCE):
            return
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            for _ in range(WAL_RESTART_TRIES):
                mode = "TRUNCATE" if quiet else "RESTART"
                if self.db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0] == 0:
                    return
                time.sleep(0.002)
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

    def close(self) -> None:
        """Close every thread's connection. The last connection to the database to close
        copies the WAL into it and removes the file: a stopped server leaves the database
        whole in one file (up to 61 MB of WAL were left beside it before)."""
        with self._opening:
            opened, self._opened = self._opened, []
            self._generation += 1
        for db in opened:
            db.close()
