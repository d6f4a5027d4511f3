"""Storage: the narrow interfaces (base.py), the shared SQL (sql.py) and the backends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from .base import BlobStore
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


def blob_directory(config: Config) -> Path:
    return Path(config.blob_dir) if config.blob_dir else config.data_dir / "blobs"


def open_blobs(config: Config, store: SQLStore) -> BlobStore:
    """The configured blob store: files in a directory, or the PostgreSQL database's
    blob_data table. "auto": the database when it is PostgreSQL and no blob_dir is set (so
    nodes need no shared directory), else files. The database store still reads what an
    earlier deployment left in files."""
    from .blobs import FileBlobStore

    kind = str(config.blob_store)
    if kind == "auto":
        kind = "postgresql" if store.dialect == "postgresql" and not config.blob_dir else "file"
    if kind == "postgresql":
        from .postgres import PostgresBlobStore, PostgresStore

        if not isinstance(store, PostgresStore):
            raise ValueError("blob_store postgresql needs a PostgreSQL database")
        legacy = blob_directory(config)
        return PostgresBlobStore(store, FileBlobStore(legacy) if legacy.is_dir() else None)
    if kind == "file":
        return FileBlobStore(blob_directory(config))
    if kind == "s3":
        from .s3 import S3BlobStore

        if not config.s3_bucket:
            raise ValueError("blob_store s3 needs s3_bucket")
        return S3BlobStore(
            str(config.s3_bucket), str(config.s3_prefix), str(config.s3_endpoint),
            str(config.s3_region), str(config.s3_access_key), str(config.s3_secret_key),
        )  # fmt: skip
    raise ValueError(f"unknown blob_store {kind!r}: auto, file, postgresql or s3")
