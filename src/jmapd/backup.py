"""`jmapd backup DIR` and `jmapd restore DIR`: a consistent copy of everything, taken while
the server runs, in a form either backend reads.

A backup is the rows of the tables that are the truth (accounts, grants, tokens, records with
their change log, type states, blob references), read in one snapshot of the database
(SQLite: one read transaction of the WAL; PostgreSQL: REPEATABLE READ), as JSON lines, plus
the file of every blob those rows reference (blobs are immutable, and no file is removed
while a row references it). The message index is derived: `restore` rebuilds it from the
messages, so a backup of one backend restores into the other (by a jmapd of the same
schema version).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from .protocol.values import utc_date
from .store.base import BlobStore
from .store.sql import SQLStore, marks

FORMAT = "jmapd-backup"
# The outbound queue too: what was queued and not yet sent when the backup was made is sent
# after a restore (what was sent since, again: a restore goes back in time).
TABLES = ("accounts", "access", "tokens", "records", "type_states", "blobs", "server_keys",
          "aliases", "outbox")  # fmt: skip
Progress = Callable[[str], None]


class BackupError(Exception):
    pass


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$base64" in value:
        return base64.b64decode(value["$base64"])
    return value


def backup(store: SQLStore, blobs: BlobStore, target: Path, progress: Progress) -> dict[str, int]:
    """Write a backup into `target` (a new or empty directory); return what it holds."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    (target / "tables").mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    blob_ids: set[str] = set()
    with store.snapshot() as db:  # one snapshot for every table
        (schema,) = db.execute("SELECT max(version) FROM schema_version").fetchone()
        for table in TABLES:
            cursor: Any = db.execute(f"SELECT * FROM {table}")
            columns = [c[0] for c in cursor.description]
            with open(target / "tables" / f"{table}.jsonl", "wb") as out:
                out.write(orjson.dumps(columns) + b"\n")
                counts[table] = 0
                for row in cursor.fetchall():
                    out.write(orjson.dumps([_encode(v) for v in row]) + b"\n")
                    counts[table] += 1
                    if table == "blobs":
                        blob_ids.add(row[columns.index("blob_id")])
            progress(f"{table}: {counts[table]} rows")
    copied = 0
    for blob_id in sorted(blob_ids):
        data = blobs.read(blob_id)
        if data is None:
            progress(f"blob {blob_id} has no file: left out")
            continue
        path = target / "blobs" / blob_id[1:3] / blob_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        copied += 1
    counts["blob files"] = copied
    manifest = {
        "format": FORMAT,
        "schema": int(schema),
        "created": utc_date(time.time()),
        "backend": store.dialect,
        "counts": counts,
    }
    (target / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    _sync(target)
    return counts


def _sync(directory: Path) -> None:
    """What was written is on disk before the backup is called made."""
    for path in [*directory.rglob("*"), directory]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _rows(source: Path, table: str) -> tuple[list[str], Iterator[list[Any]]]:
    lines = open(source / "tables" / f"{table}.jsonl", "rb")  # noqa: SIM115 (read below)
    columns = orjson.loads(lines.readline())

    def rows() -> Iterator[list[Any]]:
        with lines:
            for line in lines:
                yield [_decode(v) for v in orjson.loads(line)]

    return columns, rows()


def restore(store: SQLStore, blobs: BlobStore, source: Path, progress: Progress,
            reindex: Callable[[SQLStore], int]) -> dict[str, int]:  # fmt: skip
    """Restore a backup into an empty store (made at the backup's schema version, the rows
    put in, then migrated to this version's); the message index is rebuilt with `reindex`."""
    try:
        manifest = orjson.loads((source / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise BackupError(f"{source} holds no jmapd backup ({e})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source} holds no jmapd backup")
    if store.list_accounts():
        raise BackupError("the store to restore into has accounts: restore into an empty one")
    current = store.migrate()
    if manifest["schema"] != current:
        raise BackupError(
            f"the backup is of schema {manifest['schema']}, this jmapd's is {current}: restore "
            "with the jmapd that made it, then upgrade"
        )
    counts: dict[str, int] = {}
    with store.whole() as db:
        for table in TABLES:
            db.execute(f"DELETE FROM {table}")
        for table in TABLES:
            columns, rows = _rows(source, table)
            counts[table] = 0
            for row in rows:
                db.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(row)})", row)
                counts[table] += 1
            progress(f"{table}: {counts[table]} rows")
    restored = 0
    for path in sorted((source / "blobs").rglob("B*")) if (source / "blobs").is_dir() else []:
        data = path.read_bytes()
        if "B" + hashlib.sha256(data).hexdigest() != path.name:
            raise BackupError(f"{path} is damaged: its bytes do not match its name")
        blobs.put(data)
        restored += 1
    counts["blob files"] = restored
    counts["messages indexed"] = reindex(store)
    return counts
