"""Helpers for the contacts conformance tests (RFC 9610) over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.conformance import notes
from tests.conftest import CORE, Client, Server

CONTACTS = "urn:ietf:params:jmap:contacts"
USING = [CORE, CONTACTS]


def fresh_account(server: Server) -> tuple[Client, str]:
    """A new account made with the CLI: it holds exactly the default address book."""
    return notes.fresh_account(server, "ct")


def call(client: Client, name: str, args: dict[str, Any]) -> list[Any]:
    return client.call(name, args, USING)


def ok(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    rname, rargs = call(client, name, args)
    assert rname == name, rargs
    return dict(rargs)


def error(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    rname, rargs = call(client, name, args)
    assert rname == "error", (rname, rargs)
    return dict(rargs)


def books(client: Client, account: str) -> dict[str, dict[str, Any]]:
    """name → AddressBook."""
    found = ok(client, "AddressBook/get", {"accountId": account, "ids": None})["list"]
    return {b["name"]: b for b in found}


def default_book(client: Client, account: str) -> str:
    (book,) = [b for b in books(client, account).values() if b["isDefault"]]
    return str(book["id"])


def card_set(client: Client, account: str, **args: Any) -> dict[str, Any]:
    return ok(client, "ContactCard/set", {"accountId": account, **args})


def create_cards(client: Client, account: str, cards: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Create cards that must all succeed; creation id → id."""
    out = card_set(client, account, create=cards)
    assert out["notCreated"] is None, out["notCreated"]
    return {cid: created["id"] for cid, created in out["created"].items()}


def create_card(client: Client, account: str, **card: Any) -> str:
    return create_cards(client, account, {"c": card})["c"]


def not_created(client: Client, account: str, **card: Any) -> dict[str, Any]:
    out = card_set(client, account, create={"c": card})
    assert out["created"] is None, out
    return dict(out["notCreated"]["c"])


def get_cards(client: Client, account: str, ids: list[str] | None, **args: Any) -> dict[str, Any]:
    out = ok(client, "ContactCard/get", {"accountId": account, "ids": ids, **args})
    return {c["id"]: c for c in out["list"]}


def query_ids(client: Client, account: str, **args: Any) -> list[str]:
    return list(ok(client, "ContactCard/query", {"accountId": account, **args})["ids"])


def person(given: str, surname: str, **more: Any) -> dict[str, Any]:
    return {
        "name": {
            "components": [
                {"kind": "given", "value": given},
                {"kind": "surname", "value": surname},
            ],
            "isOrdered": True,
        },
        **more,
    }
