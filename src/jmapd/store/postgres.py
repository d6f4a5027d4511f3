"""The PostgreSQL backend, for several stateless jmapd nodes on one database.

psycopg 3 (sync) with a connection pool: the engine runs each request's method calls in a worker
thread, so a synchronous driver fits it without an event-loop bridge (docs/scaling.md).
Writers of one account are serialised by a row lock on the account taken first in every write
transaction, so `ifInState` holds across nodes. Every write transaction that changes states
sends them with NOTIFY, delivered at commit to every node's LISTEN connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool

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


class PostgresStore(SQLStore):
    dialect = "postgresql"

    def __init__(self, url: str, max_connections: int = 20) -> None:
        self.url = url
        self.pool = ConnectionPool(url, min_size=1, max_size=max_connections, open=True)
        self.migrate()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[_Adapter]:
        with self.pool.connection() as conn, conn.transaction():
            if not write:
                # One snapshot for the whole read: a state and the changes beside it agree.
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield _Adapter(conn)

    def _lock_account(self, db: Any, account_id: str) -> None:
        db.execute("SELECT 1 FROM accounts WHERE account_id = ? FOR UPDATE", (account_id,))

    def _lock_migrations(self, db: Any) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def _committing(self, db: Any, changed: dict[str, dict[str, int]]) -> None:
        db.execute("SELECT pg_notify(?, ?)", (CHANNEL, orjson.dumps(changed).decode()))

    def listen(self, deliver: Callable[[dict[str, dict[str, int]]], None]) -> threading.Thread:
        """Deliver every node's committed state changes, from a thread of its own."""

        def run() -> None:
            while True:
                try:
                    with psycopg.connect(self.url, autocommit=True) as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        for note in conn.notifies():
                            deliver(orjson.loads(note.payload))
                except psycopg.Error:
                    log.exception("lost the LISTEN connection; reconnecting")
                    threading.Event().wait(1)

        thread = threading.Thread(target=run, name="jmapd-listen", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.pool.close()
