"""Storage: the narrow interfaces (base.py), the shared SQL (sql.py) and the backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from .sql import SQLStore


def open_store(config: Config) -> SQLStore:
    """The configured backend: PostgreSQL for a postgresql:// database URL, else SQLite in the
    data directory."""
    url = str(config.database)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(
            url, wait=float(config.database_wait), lock_timeout=float(config.lock_timeout)
        )
    if url:
        raise ValueError(f"unsupported database URL {url!r}")
    from .sqlite import SQLiteStore

    return SQLiteStore(config.data_dir / "jmapd.sqlite3", busy_timeout=float(config.lock_timeout))
