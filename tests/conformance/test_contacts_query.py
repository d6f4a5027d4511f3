"""RFC 9610 §3.3, §3.4: ContactCard/query with every FilterCondition and every sort, answered
from the card index, and ContactCard/queryChanges."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conformance.contacts import (
    card_set,
    create_cards,
    default_book,
    error,
    fresh_account,
    ok,
    person,
    query_ids,
)
from tests.conftest import Client, Server


@pytest.fixture(scope="module")
def cards(server: Server) -> tuple[Client, str, dict[str, str], dict[str, str]]:
    """An account with a small address book: (client, account, name → id, book → id)."""
    client, account = fresh_account(server)
    home = default_book(client, account)
    made = ok(client, "AddressBook/set", {"accountId": account, "create": {"w": {"name": "W"}}})
    work = made["created"]["w"]["id"]
    cards: dict[str, dict[str, Any]] = {
        "ann": person(
            "Ann", "Lee", uid="urn:uuid:ann",
            created="2020-01-01T00:00:00Z", updated="2021-01-01T00:00:00Z",
            emails={"e": {"address": "ann.lee@example.com", "label": "home mail"}},
            phones={"p": {"number": "+1 (555) 123-4567", "label": "mobile"}},
            nicknames={"n": {"name": "Annie"}},
            notes={"n": {"note": "Likes green tea and long walks"}},
        ),
        "bob": person(
            "Bob", "Álvarez", uid="urn:uuid:bob", addressBookIds={work: True},
            created="2020-06-01T00:00:00Z", updated="2020-06-01T00:00:00Z",
            emails={"e": {"address": "bob@work.example"}},
            organizations={"o": {"name": "Wombat Works"}},
            onlineServices={"s": {"service": "Mastodon", "user": "@bob@social.example"}},
            addresses={"a": {"components": [{"kind": "locality", "value": "Zürich"},
                                            {"kind": "country", "value": "Switzerland"}]}},
        ),
        "cruz": {
            "uid": "urn:uuid:cruz", "addressBookIds": {home: True, work: True},
            "created": "2019-01-01T00:00:00Z", "updated": "2022-01-01T00:00:00Z",
            "name": {"components": [
                {"kind": "given", "value": "Diego"}, {"kind": "surname", "value": "Rivera"},
                {"kind": "surname2", "value": "Barrientos"}], "isOrdered": True},
            "addresses": {"a": {"full": "54321 Oak St, Reston"}},
        },
        "group": {
            "uid": "urn:uuid:group", "kind": "group", "name": {"full": "Team Wombat"},
            "members": {"urn:uuid:ann": True, "urn:uuid:bob": True},
            "created": "2021-01-01T00:00:00Z", "updated": "2021-06-01T00:00:00Z",
        },
        "org": {
            "uid": "urn:uuid:org", "kind": "org", "name": {"full": "ACME Inc."},
            "created": "2022-01-01T00:00:00Z", "updated": "2022-02-01T00:00:00Z",
        },
    }  # fmt: skip
    return client, account, create_cards(client, account, cards), {"home": home, "work": work}


def names(found: list[str], ids: dict[str, str]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[i] for i in found]


def matching(client: Client, account: str, ids: dict[str, str], filter: Any) -> list[str]:
    sort = [{"property": "created"}]
    return names(query_ids(client, account, filter=filter, sort=sort), ids)


CASES = [
    ({"uid": "urn:uuid:bob"}, ["bob"]),
    ({"uid": "urn:uuid:BOB"}, []),
    ({"hasMember": "urn:uuid:ann"}, ["group"]),
    ({"hasMember": "urn:uuid:cruz"}, []),
    ({"kind": "group"}, ["group"]),
    ({"kind": "org"}, ["org"]),
    ({"createdBefore": "2020-06-01T00:00:00Z"}, ["cruz", "ann"]),
    ({"createdAfter": "2020-06-01T00:00:00Z"}, ["bob", "group", "org"]),
    ({"updatedBefore": "2021-01-01T00:00:00Z"}, ["bob"]),
    ({"updatedAfter": "2021-06-01T00:00:00Z"}, ["cruz", "group", "org"]),
    ({"text": "wombat"}, ["bob", "group"]),
    ({"text": "ann"}, ["ann"]),
    ({"text": "ALVAREZ"}, ["bob"]),
    ({"text": "green walks"}, ["ann"]),
    ({"text": '"green tea"'}, ["ann"]),
    ({"text": '"tea green"'}, []),
    ({"name": "rivera"}, ["cruz"]),
    ({"name": "team"}, ["group"]),
    ({"name/given": "diego"}, ["cruz"]),
    ({"name/given": "rivera"}, []),
    ({"name/surname": "lee"}, ["ann"]),
    ({"name/surname2": "barr"}, ["cruz"]),
    ({"name/surname2": "rivera"}, []),
    ({"nickname": "annie"}, ["ann"]),
    ({"organization": "wombat"}, ["bob"]),
    ({"email": "ann.lee@ex"}, ["ann"]),
    ({"email": "example.com"}, ["ann"]),
    ({"email": "work.example"}, ["bob"]),
    ({"email": "home mail"}, ["ann"]),
    ({"phone": "555"}, ["ann"]),
    ({"phone": "5551234"}, ["ann"]),
    ({"phone": "mobile"}, ["ann"]),
    ({"onlineService": "mastodon"}, ["bob"]),
    ({"onlineService": "@bob"}, ["bob"]),
    ({"address": "zurich"}, ["bob"]),
    ({"address": "oak st"}, ["cruz"]),
    ({"note": "tea"}, ["ann"]),
    ({"note": "coffee"}, []),
    ({}, ["cruz", "ann", "bob", "group", "org"]),
    ({"operator": "OR", "conditions": [{"kind": "org"}, {"uid": "urn:uuid:ann"}]}, ["ann", "org"]),
    ({"operator": "NOT", "conditions": [{"kind": "group"}, {"kind": "org"}]},
     ["cruz", "ann", "bob"]),
    ({"operator": "AND", "conditions": [{"text": "wombat"}, {"kind": "group"}]}, ["group"]),
    ({"text": "wombat", "kind": "group"}, ["group"]),
]  # fmt: skip


@pytest.mark.parametrize(("filter", "expected"), CASES)
def test_filter(cards: Any, filter: dict[str, Any], expected: list[str]) -> None:
    client, account, ids, _ = cards
    assert matching(client, account, ids, filter) == expected


def test_in_address_book(cards: Any) -> None:
    client, account, ids, books = cards
    home = matching(client, account, ids, {"inAddressBook": books["home"]})
    assert home == ["cruz", "ann", "group", "org"]
    assert matching(client, account, ids, {"inAddressBook": books["work"]}) == ["cruz", "bob"]


SORTS = [
    ([{"property": "created"}], ["cruz", "ann", "bob", "group", "org"]),
    ([{"property": "created", "isAscending": False}], ["org", "group", "bob", "ann", "cruz"]),
    ([{"property": "updated"}], ["bob", "ann", "group", "cruz", "org"]),
    ([{"property": "name/given"}, {"property": "created"}],
     ["group", "org", "ann", "bob", "cruz"]),
    ([{"property": "name/surname"}, {"property": "created"}],
     ["group", "org", "bob", "ann", "cruz"]),
    ([{"property": "name/surname", "collation": "i;ascii-casemap"}, {"property": "created"}],
     ["group", "org", "ann", "cruz", "bob"]),
    ([{"property": "name/surname", "isAscending": False}, {"property": "created"}],
     ["cruz", "ann", "bob", "group", "org"]),
    ([{"property": "name/surname2", "isAscending": False}, {"property": "created"}],
     ["cruz", "ann", "bob", "group", "org"]),
]  # fmt: skip


@pytest.mark.parametrize(("sort", "expected"), SORTS)
def test_sort(cards: Any, sort: list[dict[str, Any]], expected: list[str]) -> None:
    """§3.3.2: created, updated, name/given, name/surname, name/surname2; a card without
    the component sorts first ascending (as the generic engine sorts a null)."""
    client, account, ids, _ = cards
    assert names(query_ids(client, account, sort=sort), ids) == expected


def test_paging_and_total(cards: Any) -> None:
    client, account, ids, _ = cards
    sort = [{"property": "created"}]
    out = ok(client, "ContactCard/query", {"accountId": account, "sort": sort, "position": 1,
                                           "limit": 2, "calculateTotal": True})  # fmt: skip
    assert names(out["ids"], ids) == ["ann", "bob"]
    assert out["total"] == 5 and out["position"] == 1 and out["canCalculateChanges"] is True
    out = ok(client, "ContactCard/query", {"accountId": account, "sort": sort,
                                           "anchor": ids["bob"], "anchorOffset": -1})  # fmt: skip
    assert names(out["ids"], ids) == ["ann", "bob", "group", "org"]


def test_unsupported_filters_and_sorts(cards: Any) -> None:
    client, account, _, _ = cards
    args = {"accountId": account}
    assert error(client, "ContactCard/query", {**args, "filter": {"colour": "red"}})["type"] == (
        "unsupportedFilter"
    )
    assert error(client, "ContactCard/query", {**args, "sort": [{"property": "uid"}]})["type"] == (
        "unsupportedSort"
    )
    bad_date = {**args, "filter": {"createdBefore": "yesterday"}}
    assert error(client, "ContactCard/query", bad_date)["type"] == "invalidArguments"


def test_query_changes(server: Server) -> None:
    client, account = fresh_account(server)
    made = create_cards(client, account, {
        "a": person("A", "Alpha", created="2020-01-01T00:00:00Z"),
        "b": person("B", "Beta", created="2020-01-02T00:00:00Z"),
    })  # fmt: skip
    args = {"accountId": account, "filter": {"text": "zeta"}, "sort": [{"property": "created"}]}
    first = ok(client, "ContactCard/query", args)
    assert first["ids"] == []
    time.sleep(0.01)
    card_set(client, account, update={made["b"]: {"name": person("B", "Zeta")["name"]}})
    more = create_cards(
        client, account, {"c": person("C", "Zetas", created="2019-01-01T00:00:00Z")}
    )
    out = ok(client, "ContactCard/queryChanges", {**args, "sinceQueryState": first["queryState"],
                                                  "calculateTotal": True})  # fmt: skip
    assert out["oldQueryState"] == first["queryState"]
    assert out["total"] == 2
    assert sorted(out["removed"]) == sorted([made["b"]])
    assert out["added"] == [{"id": more["c"], "index": 0}, {"id": made["b"], "index": 1}]
    second = ok(client, "ContactCard/query", args)
    assert second["queryState"] == out["newQueryState"]
    card_set(client, account, destroy=[more["c"]])
    since = {**args, "sinceQueryState": second["queryState"]}
    out = ok(client, "ContactCard/queryChanges", since)
    assert out["removed"] == [more["c"]] and out["added"] == []
