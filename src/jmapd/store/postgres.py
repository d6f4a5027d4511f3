"""The PostgreSQL backend, for several stateless jmapd nodes on one database.

psycopg 3 (sync) with a connection pool: the engine runs each request's method calls in a worker
thread, so a synchronous driver fits it without an event-loop bridge (docs/scaling.md).
Writers of one account are serialised by a row lock on the account taken first in every write
transaction, so `ifInState` holds across nodes. Every write transaction that changes states
sends them with NOTIFY, delivered at commit to every node's LISTEN connection.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.errors import DeadlockDetected, LockNotAvailable, SerializationFailure
from psycopg_pool import ConnectionPool, PoolTimeout

from .base import Busy
from .blobs import BLOB_ID, Ensuring, FileBlobStore, blob_id_for
from .sql import Cursor, SQLStore

CHANNEL = "jmapd_state"
MIGRATION_LOCK = 8620
log = logging.getLogger("jmapd.store")


class _Adapter:
    """A psycopg connection that takes `?` placeholders like the shared SQL."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        if not params:  # e.g. a migration: its text is SQL only, "%" and "?" included
            return self.conn.execute(sql)
        return self.conn.execute(sql.replace("?", "%s"), params)


class Unreachable(Exception):
    """The database could not be reached within the configured wait."""


def where(url: str) -> str:
    """host:port/dbname of a URL, without the password (for messages)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured database"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def wait_for(url: str, seconds: float) -> None:
    """Connect once, retrying for at most `seconds`; then Unreachable, naming the reason."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(url, connect_timeout=max(2, min(10, int(seconds)))).close()
            return
        except psycopg.Error as e:
            if time.monotonic() >= deadline:
                reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                raise Unreachable(
                    f"cannot reach PostgreSQL at {where(url)} after {seconds:g} s: {reason}"
                ) from None
            time.sleep(0.5)


class PostgresStore(SQLStore):
    dialect = "postgresql"

    def __init__(
        self, url: str, max_connections: int = 20, wait: float = 30, lock_timeout: float = 30
    ) -> None:
        self.url = url
        wait_for(url, wait)

        def configure(conn: psycopg.Connection[Any]) -> None:
            # A writer waits this long for an account's row lock, then Busy (not forever).
            conn.execute(f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'")
            conn.commit()

        self.pool = ConnectionPool(
            url, min_size=1, max_size=max_connections, open=True, configure=configure,
            timeout=lock_timeout,
        )  # fmt: skip
        self.migrate()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[_Adapter]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                if not write:
                    # One snapshot for the whole read: a state and the changes beside it agree.
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield _Adapter(conn)
        except (LockNotAvailable, DeadlockDetected, SerializationFailure, PoolTimeout) as e:
            raise Busy(str(e).strip()) from e

    def _lock_account(self, db: Any, account_id: str) -> None:
        db.execute("SELECT 1 FROM accounts WHERE account_id = ? FOR UPDATE", (account_id,))

    def _lock_migrations(self, db: Any) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def _committing(self, db: Any, changed: dict[str, dict[str, int]]) -> None:
        db.execute("SELECT pg_notify(?, ?)", (CHANNEL, orjson.dumps(changed).decode()))

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
        with self.pool.connection() as conn:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            conn.commit()
            try:
                yield bool(got and got[0])
            finally:
                if got and got[0]:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    conn.commit()

    def listen(
        self,
        deliver: Callable[[dict[str, dict[str, int]]], None],
        connected: Callable[[], None] = lambda: None,
    ) -> threading.Thread:
        """Deliver every node's committed state changes, from a thread of its own that
        nothing stops: a lost connection is made again, and `connected` is called each time
        the LISTEN is in place (what was committed meanwhile was not notified here: the
        caller catches up by reading the states)."""

        def run() -> None:
            while True:
                try:
                    with psycopg.connect(self.url, autocommit=True) as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        connected()
                        for note in conn.notifies():
                            try:
                                deliver(orjson.loads(note.payload))
                            except Exception:
                                log.exception("a state change notification was not delivered")
                except Exception:
                    log.exception("lost the LISTEN connection; reconnecting")
                    threading.Event().wait(1)

        thread = threading.Thread(target=run, name="jmapd-listen", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.pool.close()


class PostgresBlobStore(Ensuring):
    """Blob bytes in the database (table blob_data), so several nodes need no shared
    directory. A blob left in files by an earlier deployment (`fallback`) is still read."""

    def __init__(self, store: PostgresStore, fallback: FileBlobStore | None = None) -> None:
        self.pool = store.pool
        self.fallback = fallback

    def put(self, data: bytes) -> str:
        blob_id = blob_id_for(data)
        now = time.time()
        with self.pool.connection() as conn, conn.transaction():
            # A fresh `written` keeps a concurrent removal away (as a file's mtime does).
            found = conn.execute(
                "UPDATE blob_data SET written = %s WHERE blob_id = %s", (now, blob_id)
            ).rowcount
            if not found:
                conn.execute(
                    "INSERT INTO blob_data (blob_id, data, written) VALUES (%s, %s, %s) "
                    "ON CONFLICT (blob_id) DO UPDATE SET written = excluded.written",
                    (blob_id, data, now),
                )
        return blob_id

    def read(self, blob_id: str) -> bytes | None:
        if not BLOB_ID.fullmatch(blob_id):
            return None
        with self.pool.connection() as conn:
            row = conn.execute("SELECT data FROM blob_data WHERE blob_id = %s", (blob_id,))
            found = row.fetchone()
        if found is not None:
            return bytes(found[0])
        return self.fallback.read(blob_id) if self.fallback else None

    def read_many(self, blob_ids: list[str]) -> dict[str, bytes]:
        wanted = [b for b in dict.fromkeys(blob_ids) if BLOB_ID.fullmatch(b)]
        if not wanted:
            return {}
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT blob_id, data FROM blob_data WHERE blob_id = ANY(%s)",
                                (wanted,)).fetchall()  # fmt: skip
        found = {str(r[0]): bytes(r[1]) for r in rows}
        for blob_id in wanted:
            if blob_id not in found and self.fallback is not None:
                data = self.fallback.read(blob_id)
                if data is not None:
                    found[blob_id] = data
        return found

    def exists(self, blob_id: str) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT 1 FROM blob_data WHERE blob_id = %s", (blob_id,))
            if row.fetchone() is not None:
                return True
        return self.fallback.exists(blob_id) if self.fallback else False

    def path(self, blob_id: str) -> str | None:
        return None

    def remove_unused(self, blob_id: str, referenced: Callable[[], bool], min_age: float) -> str:
        """In one transaction: the row goes if it is old and no reference to it exists (a
        reference committed meanwhile is seen, or waits on the row lock)."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT written FROM blob_data WHERE blob_id = %s FOR UPDATE", (blob_id,)
            ).fetchone()
            if row is None:
                return "missing"
            if row[0] > time.time() - min_age:
                return "young"
            if referenced():
                return "referenced"
            gone = conn.execute(
                "DELETE FROM blob_data b WHERE blob_id = %s "
                "AND NOT EXISTS (SELECT 1 FROM blobs r WHERE r.blob_id = b.blob_id)",
                (blob_id,),
            ).rowcount
            return "removed" if gone else "referenced"

    def blob_ids(self, stale_before: float) -> Iterator[tuple[str, float]]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT blob_id, written FROM blob_data").fetchall()
        for blob_id, written in rows:
            yield blob_id, float(written)
