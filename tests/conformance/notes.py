"""Helpers for the engine conformance tests (RFC 8620 §5), over the Note test type.

The fixture server is shared by the whole test session, so every test scopes its records by a
tag of its own (the `hasTag` filter) and compares states it took itself.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.conftest import CORE, TEST, Client, Server, jmapd

ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
UTC_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def unique(name: str) -> str:
    """A tag (or title prefix) no other test uses."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def limits(client: Client) -> dict[str, Any]:
    return client.session()["capabilities"][CORE]


def create(client: Client, account: str, notes: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Create notes (creation id → Note) that must all succeed; return creation id → id."""
    out = client.ok("Note/set", {"accountId": account, "create": notes})
    assert out["notCreated"] is None, out["notCreated"]
    return {cid: created["id"] for cid, created in out["created"].items()}


def create_one(client: Client, account: str, **note: Any) -> str:
    return create(client, account, {"n": note})["n"]


def set_ok(client: Client, account: str, **args: Any) -> dict[str, Any]:
    """A Note/set whose every create, update and destroy must succeed."""
    out = client.ok("Note/set", {"accountId": account, **args})
    for failed in ("notCreated", "notUpdated", "notDestroyed"):
        assert out[failed] is None, out
    return out


def get(client: Client, account: str, ids: list[str], **args: Any) -> dict[str, dict[str, Any]]:
    """Notes by id (those that exist)."""
    out = client.ok("Note/get", {"accountId": account, "ids": ids, **args})
    return {note["id"]: note for note in out["list"]}


def state(client: Client, account: str, type: str = "Note") -> str:
    return client.ok(f"{type}/get", {"accountId": account, "ids": []})["state"]


def query(client: Client, account: str, **args: Any) -> dict[str, Any]:
    return client.ok("Note/query", {"accountId": account, **args})


def query_ids(client: Client, account: str, **args: Any) -> list[str]:
    return query(client, account, **args)["ids"]


def error(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A call that must answer a method-level error (§3.6.2); return its arguments."""
    rname, rargs = client.call(name, args)
    assert rname == "error", (rname, rargs)
    return rargs


def fresh_account(server: Server, name: str) -> tuple[Client, str]:
    """A new user with an empty account of their own: (client, account id)."""
    user = f"{unique(name)}@example.com"
    password = uuid.uuid4().hex
    jmapd(server.data, "account", "add", user, "--password", password)
    server.passwords[user] = password
    client = server.client(user)
    return client, client.session()["primaryAccounts"][TEST]
