"""RFC 8620 §5.1: Foo/get, on the Note test type."""

from __future__ import annotations

from tests.conformance.notes import (
    UTC_DATE,
    create,
    create_one,
    error,
    fresh_account,
    get,
    limits,
    set_ok,
    state,
    unique,
)
from tests.conftest import Client, Server


def test_get_by_ids_returns_every_property(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    title = unique("get")
    note = create_one(alice, account, title=title, body="héllo", tags={"a": True}, priority=-3)
    out = alice.ok("Note/get", {"accountId": account, "ids": [note]})
    assert out["accountId"] == account
    assert out["notFound"] == []
    [got] = out["list"]
    assert UTC_DATE.match(got.pop("created"))
    assert got == {
        "id": note,
        "title": title,
        "body": "héllo",
        "folderId": None,
        "tags": {"a": True},
        "priority": -3,
        "kind": "plain",
        "size": 6,  # octets of UTF-8
    }


def test_properties_null_is_every_property(alice: Client, ids: dict[str, str]) -> None:
    note = create_one(alice, ids["alice"], title=unique("get"))
    [got] = get(alice, ids["alice"], [note], properties=None).values()
    assert set(got) == {
        "id",
        "title",
        "body",
        "folderId",
        "tags",
        "priority",
        "kind",
        "created",
        "size",
    }


def test_properties_subset_always_includes_id(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    title = unique("get")
    made = create(alice, account, {"a": {"title": title}, "b": {"title": title, "body": "xy"}})
    notes = sorted(made.values())
    got = get(alice, account, notes, properties=["title", "size"])
    assert got == {
        made["a"]: {"id": made["a"], "title": title, "size": 0},
        made["b"]: {"id": made["b"], "title": title, "size": 2},
    }
    assert get(alice, account, notes, properties=[]) == {id: {"id": id} for id in notes}
    assert get(alice, account, notes, properties=["id"]) == {id: {"id": id} for id in notes}
    both = get(alice, account, notes, properties=["id", "priority"])
    assert both == {id: {"id": id, "priority": 0} for id in notes}


def test_unknown_property_is_invalid_arguments(alice: Client, ids: dict[str, str]) -> None:
    note = create_one(alice, ids["alice"], title=unique("get"))
    for properties in (["title", "colour"], ["Title"], ["tags/a"]):
        out = error(
            alice,
            "Note/get",
            {"accountId": ids["alice"], "ids": [note], "properties": properties},
        )
        assert out["type"] == "invalidArguments"


def test_unknown_ids_are_not_found(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("get"))
    out = alice.ok("Note/get", {"accountId": account, "ids": ["missing-1", note, "missing-2"]})
    assert [n["id"] for n in out["list"]] == [note]
    assert sorted(out["notFound"]) == ["missing-1", "missing-2"]


def test_empty_ids_returns_nothing(alice: Client, ids: dict[str, str]) -> None:
    create_one(alice, ids["alice"], title=unique("get"))
    out = alice.ok("Note/get", {"accountId": ids["alice"], "ids": []})
    assert out["list"] == []
    assert out["notFound"] == []


def test_duplicate_ids_are_returned_once(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("get"))
    out = alice.ok(
        "Note/get",
        {"accountId": account, "ids": [note, "missing", note, "missing", note]},
    )
    assert [n["id"] for n in out["list"]] == [note]
    assert out["notFound"] == ["missing"]


def test_records_of_another_account_are_not_found(
    alice: Client, bob: Client, ids: dict[str, str]
) -> None:
    bobs = create_one(bob, ids["bob"], title=unique("get"))
    out = alice.ok("Note/get", {"accountId": ids["alice"], "ids": [bobs]})
    assert out["list"] == []
    assert out["notFound"] == [bobs]
    # alice may read bob's account, where it is found.
    assert list(get(alice, ids["bob"], [bobs])) == [bobs]


def test_ids_null_returns_every_record(server: Server) -> None:
    client, account = fresh_account(server, "get-all")
    out = client.ok("Note/get", {"accountId": account, "ids": None})
    assert out == {"accountId": account, "state": out["state"], "list": [], "notFound": []}
    made = create(client, account, {c: {"title": f"note {c}"} for c in "abc"})
    out = client.ok("Note/get", {"accountId": account, "ids": None, "properties": ["title"]})
    assert sorted(out["list"], key=lambda n: n["title"]) == [
        {"id": made[c], "title": f"note {c}"} for c in "abc"
    ]
    assert out["notFound"] == []
    # Leaving ids out is the same as null.
    out = client.ok("Note/get", {"accountId": account, "properties": []})
    assert sorted(n["id"] for n in out["list"]) == sorted(made.values())


def test_ids_null_over_the_limit_is_request_too_large(server: Server) -> None:
    client, account = fresh_account(server, "get-many")
    max_get = limits(client)["maxObjectsInGet"]
    max_set = limits(client)["maxObjectsInSet"]
    for start in range(0, max_get, max_set):
        count = min(max_set, max_get - start)
        create(client, account, {f"n{start + i}": {"title": "x"} for i in range(count)})
    out = client.ok("Note/get", {"accountId": account, "ids": None, "properties": []})
    assert len(out["list"]) == max_get
    create_one(client, account, title="one too many")
    assert error(client, "Note/get", {"accountId": account, "ids": None})["type"] == (
        "requestTooLarge"
    )


def test_too_many_ids_is_request_too_large(alice: Client, ids: dict[str, str]) -> None:
    max_get = limits(alice)["maxObjectsInGet"]
    wanted = [f"nothere{i}" for i in range(max_get)]
    out = alice.ok("Note/get", {"accountId": ids["alice"], "ids": wanted})
    assert out["list"] == []
    assert sorted(out["notFound"]) == sorted(wanted)
    wanted.append("onemore")
    out = error(alice, "Note/get", {"accountId": ids["alice"], "ids": wanted})
    assert out["type"] == "requestTooLarge"


def test_state_is_stable_and_changes_after_a_write(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    before = state(alice, account)
    assert isinstance(before, str) and before
    assert state(alice, account) == before  # SHOULD: unchanged data, same state
    created = set_ok(alice, account, create={"n": {"title": unique("get")}})
    after = state(alice, account)
    assert after != before
    assert created["oldState"] == before
    assert created["newState"] == after
    note = created["created"]["n"]["id"]
    set_ok(alice, account, update={note: {"body": "changed"}})
    assert state(alice, account) not in (before, after)
    # The state covers all records of the type, not only those returned.
    assert alice.ok("Note/get", {"accountId": account, "ids": []})["state"] == state(alice, account)
