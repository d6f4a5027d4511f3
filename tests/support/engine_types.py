"""Minimal data types that exercise the generic engine until the mail types exist.

Loaded into a real jmapd through the `extra_modules` option (JMAPD_EXTRA_MODULES). They are
declarations only, like every real type: the engine does the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jmapd.protocol.engine import DataType, Filter, Hooks, Property, register_type
from jmapd.protocol.errors import SetError
from jmapd.protocol.registry import REGISTRY, Capability, personal_only
from jmapd.protocol.values import (
    BOOLEAN,
    ID_KIND,
    INT,
    STRING,
    UNSIGNED_INT,
    UTC_DATE_KIND,
    ListOf,
    MapOf,
    Nullable,
)

TEST = "urn:jmapd:test"
TEST_PERSONAL = "urn:jmapd:test:personal"

REGISTRY.capability(Capability(TEST, lambda config: {}, lambda access: {}))
REGISTRY.capability(Capability(TEST_PERSONAL, lambda config: {}, personal_only({"x": 1})))


def bump_folders(txn: Any, *folder_ids: str | None) -> None:
    """A folder shows how many notes it holds: a note moving in or out changes its count."""
    for folder_id in set(folder_ids) - {None}:
        txn.bump("Folder", folder_id)


class NoteHooks(Hooks):
    def create(self, ctx: Any, txn: Any, record: dict[str, Any]) -> None:
        record["created"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        record["size"] = len(record["body"].encode())
        bump_folders(txn, record["folderId"])

    def update(self, ctx: Any, txn: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
        new["size"] = len(new["body"].encode())
        if old["folderId"] != new["folderId"]:
            bump_folders(txn, old["folderId"], new["folderId"])

    def destroy(self, ctx: Any, txn: Any, record: dict[str, Any]) -> None:
        if record["tags"].get("locked"):
            raise SetError("forbidden", "this note is locked")
        bump_folders(txn, record["folderId"])


class FolderHooks(Hooks):
    def present(self, ctx: Any, txn: Any, records: dict[str, Any]) -> None:
        counts: dict[str, int] = {}
        for note in txn.get("Note", None).values():
            counts[note["folderId"]] = counts.get(note["folderId"], 0) + 1
        for id, record in records.items():
            record["noteCount"] = counts.get(id, 0)


register_type(
    DataType(
        "Note",
        TEST,
        (
            Property("title", STRING),
            Property("body", STRING, default=""),
            Property("folderId", Nullable(ID_KIND), default=None),
            Property("tags", MapOf(STRING, BOOLEAN), default={}),
            Property("priority", INT, default=0),
            Property("kind", STRING, default="plain", immutable=True),
            Property("created", UTC_DATE_KIND, server_set=True),
            Property("size", UNSIGNED_INT, server_set=True),
        ),
        filters={
            "title": Filter(STRING, lambda r, v: v.lower() in r["title"].lower()),
            "folderId": Filter(Nullable(ID_KIND), lambda r, v: r["folderId"] == v),
            "minPriority": Filter(INT, lambda r, v: r["priority"] >= v),
            "hasTag": Filter(STRING, lambda r, v: bool(r["tags"].get(v))),
        },
        sorts={
            "title": lambda r: r["title"],
            "priority": lambda r: r["priority"],
            "size": lambda r: r["size"],
        },
        hooks=NoteHooks(),
    )
)

register_type(
    DataType(
        "Folder",
        TEST,
        (
            Property("name", STRING),
            Property("noteIds", ListOf(ID_KIND), default=[]),
            Property("noteCount", UNSIGNED_INT, server_set=True),
        ),
        sorts={"name": lambda r: r["name"]},
        filters={"name": Filter(STRING, lambda r, v: r["name"] == v)},
        hooks=FolderHooks(),
        count_properties=("noteCount",),
    )
)

register_type(
    DataType(
        "Setting",
        TEST_PERSONAL,
        (Property("value", STRING, default=""),),
        methods=("get", "set", "changes"),
    )
)


@REGISTRY.method("Test/sleep", TEST, account_argument=None)
def sleep(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Holds a request open, so tests can reach maxConcurrentRequests."""
    import time

    time.sleep(float(args.get("seconds", 1)))
    return {}


@REGISTRY.method("Test/fail", TEST, account_argument=None)
def fail(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """A handler with a bug: must become serverFail for this call only."""
    raise RuntimeError("a bug in a handler")
