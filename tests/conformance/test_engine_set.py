"""RFC 8620 §5.3: Foo/set, on the Note test type (title required; body, folderId, tags,
priority, kind defaulted; kind immutable; created and size set by the server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conformance.notes import (
    ID,
    UTC_DATE,
    create,
    create_one,
    error,
    get,
    limits,
    query_ids,
    set_ok,
    state,
    unique,
)
from tests.conftest import Client

DEFAULTS = {"body": "", "folderId": None, "tags": {}, "priority": 0, "kind": "plain"}


def set_(client: Client, account: str, **args: Any) -> dict[str, Any]:
    return client.ok("Note/set", {"accountId": account, **args})


def tagged(client: Client, account: str, tag: str) -> list[str]:
    return query_ids(client, account, filter={"hasTag": tag})


def assert_recent(utc_date: str) -> None:
    assert UTC_DATE.match(utc_date), utc_date
    when = datetime.strptime(utc_date[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=1)


# -- create ----------------------------------------------------------------------------------


def test_create_returns_everything_the_client_did_not_send(
    alice: Client, ids: dict[str, str]
) -> None:
    account = ids["alice"]
    title = unique("set")
    out = set_(alice, account, create={"a": {"title": title}, "b": {"title": title, "body": "ab€"}})
    assert out["accountId"] == account
    assert out["notCreated"] is None
    assert out["updated"] is None and out["destroyed"] is None
    assert out["notUpdated"] is None and out["notDestroyed"] is None
    a, b = out["created"]["a"], out["created"]["b"]
    assert ID.match(a["id"]) and ID.match(b["id"]) and a["id"] != b["id"]
    assert_recent(a["created"])
    assert_recent(b["created"])
    assert a == {"id": a["id"], "created": a["created"], "size": 0, **DEFAULTS}
    defaults = {k: v for k, v in DEFAULTS.items() if k != "body"}
    assert b == {"id": b["id"], "created": b["created"], "size": 5, **defaults}
    # What /get returns is what was sent plus what create returned.
    got = get(alice, account, [a["id"], b["id"]])
    assert got[a["id"]] == {"title": title, **a}
    assert got[b["id"]] == {"title": title, "body": "ab€", **b}


def test_create_with_every_client_property_returns_only_server_set_ones(
    alice: Client, ids: dict[str, str]
) -> None:
    account = ids["alice"]
    folder = alice.ok("Folder/set", {"accountId": account, "create": {"f": {"name": "inbox"}}})
    folder_id = folder["created"]["f"]["id"]
    note = {
        "title": unique("set"),
        "body": "four",
        "folderId": folder_id,
        "tags": {"x": True, "y": False},
        "priority": 7,
        "kind": "fancy",
    }
    out = set_(alice, account, create={"a": note})
    created = out["created"]["a"]
    assert set(created) == {"id", "created", "size"}
    assert created["size"] == 4
    assert get(alice, account, [created["id"]])[created["id"]] == {**note, **created}


def test_old_and_new_state(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    before = state(alice, account)
    out = set_ok(alice, account, create={"a": {"title": unique("set")}})
    assert out["oldState"] == before
    assert out["newState"] == state(alice, account) != before
    again = set_ok(alice, account, destroy=[out["created"]["a"]["id"]])
    assert again["oldState"] == out["newState"]
    assert again["newState"] == state(alice, account) != out["newState"]


def test_if_in_state(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("set")
    current = state(alice, account)
    note = create_one(alice, account, title="kept", tags={tag: True})
    after_create = state(alice, account)
    out = error(
        alice,
        "Note/set",
        {
            "accountId": account,
            "ifInState": current,
            "create": {"a": {"title": "never", "tags": {tag: True}}},
            "update": {note: {"title": "never"}},
            "destroy": [note],
        },
    )
    assert out["type"] == "stateMismatch"
    assert state(alice, account) == after_create
    assert tagged(alice, account, tag) == [note]
    assert get(alice, account, [note])[note]["title"] == "kept"
    # The current state matches.
    out = set_ok(alice, account, ifInState=after_create, update={note: {"title": "changed"}})
    assert out["oldState"] == after_create
    assert get(alice, account, [note])[note]["title"] == "changed"


def not_created(client: Client, account: str, note: dict[str, Any]) -> dict[str, Any]:
    out = set_(client, account, create={"bad": note})
    assert out["created"] is None, out
    return out["notCreated"]["bad"]


def test_create_with_invalid_properties(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("set")
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"title": "t", "colour": "red"}, ["colour"]),  # unknown
        ({"title": "t", "size": 0}, ["size"]),  # server-set
        ({"title": "t", "created": "2020-01-01T00:00:00Z"}, ["created"]),
        ({"title": "t", "id": "chosen"}, ["id"]),
        ({"title": 5}, ["title"]),  # wrong type
        ({"title": None}, ["title"]),
        ({"title": "t", "priority": "high"}, ["priority"]),
        ({"title": "t", "priority": 1.5}, ["priority"]),
        ({"title": "t", "priority": True}, ["priority"]),
        ({"title": "t", "tags": {"a": "yes"}}, ["tags"]),
        ({"title": "t", "tags": ["a"]}, ["tags"]),
        ({"title": "t", "folderId": "not an id!"}, ["folderId"]),
        ({"title": "t", "body": None}, ["body"]),
        ({}, ["title"]),  # missing required
        ({"body": "b"}, ["title"]),
    ]
    for note, properties in cases:
        err = not_created(alice, account, {"tags": {tag: True}, **note})
        assert err["type"] == "invalidProperties", (note, err)
        assert err["properties"] == properties, (note, err)
    assert tagged(alice, account, tag) == []


def test_create_lists_all_invalid_properties(alice: Client, ids: dict[str, str]) -> None:
    # §5.3: the SetError SHOULD list *all* the properties that were invalid.
    err = not_created(alice, ids["alice"], {"colour": 1, "size": 3, "priority": "x"})
    assert err["type"] == "invalidProperties"
    assert sorted(err["properties"]) == ["colour", "priority", "size", "title"]


def test_errors_do_not_stop_other_records(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("set")
    made = create(
        alice,
        account,
        {c: {"title": c, "tags": {tag: True}} for c in ("keep", "change", "drop")},
    )
    out = set_(
        alice,
        account,
        create={
            "bad": {"title": 1, "tags": {tag: True}},
            "good": {"title": "good", "tags": {tag: True}},
        },
        update={"missing": {"title": "x"}, made["change"]: {"title": "changed"}},
        destroy=["gone", made["drop"]],
    )
    assert out["notCreated"]["bad"]["type"] == "invalidProperties"
    assert list(out["created"]) == ["good"]
    assert out["notUpdated"] == {"missing": out["notUpdated"]["missing"]}
    assert out["notUpdated"]["missing"]["type"] == "notFound"
    assert out["updated"] == {made["change"]: None}
    assert out["notDestroyed"] == {"gone": out["notDestroyed"]["gone"]}
    assert out["notDestroyed"]["gone"]["type"] == "notFound"
    assert out["destroyed"] == [made["drop"]]
    titles = {n["title"] for n in get(alice, account, tagged(alice, account, tag)).values()}
    assert titles == {"keep", "changed", "good"}


# -- update ----------------------------------------------------------------------------------


def test_update_with_whole_properties(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"), tags={"a": True})
    out = set_ok(
        alice,
        account,
        update={note: {"title": "new", "priority": 5, "tags": {"b": True}, "folderId": None}},
    )
    assert out["updated"] == {note: None}
    got = get(alice, account, [note])[note]
    assert (got["title"], got["priority"], got["tags"]) == ("new", 5, {"b": True})


def test_the_whole_object_is_a_valid_patch(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"), body="abc", kind="fancy")
    whole = get(alice, account, [note])[note]
    out = set_ok(alice, account, update={note: whole})
    assert out["updated"] == {note: None}
    assert get(alice, account, [note])[note] == whole
    changed = {**whole, "title": "renamed", "body": "abcdef"}
    out = set_ok(alice, account, update={note: changed})
    assert out["updated"] == {note: {"size": 6}}


def test_patch_paths(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"), tags={"keep": True, "old": True})

    def patch(p: dict[str, Any]) -> dict[str, bool]:
        assert set_ok(alice, account, update={note: p})["updated"] == {note: None}
        tags: dict[str, bool] = get(alice, account, [note])[note]["tags"]
        return tags

    assert patch({"tags/new": True}) == {"keep": True, "old": True, "new": True}
    assert patch({"tags/old": None, "tags/new": False}) == {"keep": True, "new": False}
    assert patch({"tags/absent": None}) == {"keep": True, "new": False}  # no-op
    # JSON Pointer escapes (RFC 6901): ~1 is "/", ~0 is "~".
    assert patch({"tags/a~1b": True, "tags/c~0d": True}) == {
        "keep": True,
        "new": False,
        "a/b": True,
        "c~d": True,
    }
    assert patch({"tags/a~1b": None, "tags/c~0d": None, "tags/new": None}) == {"keep": True}


def test_null_sets_the_default(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"), body="text", tags={"a": True})
    set_ok(alice, account, update={note: {"priority": 4}})
    out = set_ok(alice, account, update={note: {"body": None, "tags": None, "priority": None}})
    assert out["updated"] == {note: {"size": 0}}
    got = get(alice, account, [note], properties=["body", "tags", "priority"])[note]
    assert got == {"id": note, "body": "", "tags": {}, "priority": 0}


def not_updated(client: Client, account: str, id: str, patch: dict[str, Any]) -> dict[str, Any]:
    out = set_(client, account, update={id: patch})
    assert out["updated"] is None, out
    assert list(out["notUpdated"]) == [id]
    return out["notUpdated"][id]


def test_invalid_patch(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"), tags={"a": True})
    before = get(alice, account, [note])[note]
    for patch in (
        {"tags/missing/deeper": True},  # a part before the last does not exist
        {"tags/a/deeper": True},  # …or is not an object
        {"title/x": "y"},
        {"tags": {}, "tags/a": False},  # one pointer is a prefix of another
        {"tags/b": True, "tags": {"c": True}},
    ):
        err = not_updated(alice, account, note, patch)
        assert err["type"] == "invalidPatch", (patch, err)
    assert get(alice, account, [note])[note] == before


def test_invalid_properties_on_update(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"), body="abc")
    before = get(alice, account, [note])[note]
    for patch, properties in (
        ({"colour": "red"}, ["colour"]),
        ({"priority": "high"}, ["priority"]),
        ({"tags/x": "yes"}, ["tags"]),
        ({"title": None}, ["title"]),  # no default: removing a required property
        ({"kind": "fancy"}, ["kind"]),  # immutable
        ({"size": before["size"] + 1}, ["size"]),  # server-set, different value
        ({"created": "2001-01-01T00:00:00Z"}, ["created"]),
        ({"id": "another"}, ["id"]),
        # Server-set values are compared before the patch is applied.
        ({"body": "abcd", "size": 4}, ["size"]),
    ):
        err = not_updated(alice, account, note, patch)
        assert err["type"] == "invalidProperties", (patch, err)
        assert err["properties"] == properties, (patch, err)
    assert get(alice, account, [note])[note] == before


def test_server_set_and_immutable_properties_may_be_sent_unchanged(
    alice: Client, ids: dict[str, str]
) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"), body="abc")
    got = get(alice, account, [note])[note]
    patch = {"id": note, "size": 3, "created": got["created"], "kind": "plain", "title": "t"}
    assert set_ok(alice, account, update={note: patch})["updated"] == {note: None}
    assert get(alice, account, [note])[note] == {**got, "title": "t"}


def test_update_returns_what_the_server_changed(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"), body="ab")
    assert set_ok(alice, account, update={note: {"body": "abcd"}})["updated"] == {note: {"size": 4}}
    assert set_ok(alice, account, update={note: {"body": "wxyz"}})["updated"] == {note: None}
    assert set_ok(alice, account, update={note: {"title": "other"}})["updated"] == {note: None}
    assert get(alice, account, [note])[note]["size"] == 4


def test_update_and_destroy_unknown_ids_are_not_found(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    before = state(alice, account)
    out = set_(alice, account, update={"nosuchnote": {"title": "x"}}, destroy=["nosuchnote2"])
    assert out["updated"] is None and out["destroyed"] is None
    assert out["notUpdated"]["nosuchnote"]["type"] == "notFound"
    assert out["notDestroyed"]["nosuchnote2"]["type"] == "notFound"
    assert state(alice, account) == before


def test_updating_a_record_being_destroyed_is_will_destroy(
    alice: Client, ids: dict[str, str]
) -> None:
    account = ids["alice"]
    note = create_one(alice, account, title=unique("set"))
    out = set_(alice, account, update={note: {"title": "x"}}, destroy=[note])
    assert out["notUpdated"][note]["type"] == "willDestroy"
    assert out["updated"] is None
    assert out["destroyed"] == [note]
    assert get(alice, account, [note]) == {}


# -- destroy ---------------------------------------------------------------------------------


def test_destroyed_records_are_not_found_afterwards(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("set")
    made = create(alice, account, {c: {"title": c, "tags": {tag: True}} for c in "ab"})
    out = set_ok(alice, account, destroy=[made["a"]])
    assert out["destroyed"] == [made["a"]]
    got = alice.ok("Note/get", {"accountId": account, "ids": [made["a"], made["b"]]})
    assert [n["id"] for n in got["list"]] == [made["b"]]
    assert got["notFound"] == [made["a"]]
    assert tagged(alice, account, tag) == [made["b"]]
    again = set_(alice, account, destroy=[made["a"]])
    assert again["notDestroyed"][made["a"]]["type"] == "notFound"
    assert not_updated(alice, account, made["a"], {"title": "x"})["type"] == "notFound"


def test_a_hook_may_forbid_a_destroy(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    locked = create_one(alice, account, title=unique("set"), tags={"locked": True})
    other = create_one(alice, account, title=unique("set"))
    out = set_(alice, account, destroy=[locked, other])
    assert out["notDestroyed"] == {locked: out["notDestroyed"][locked]}
    assert out["notDestroyed"][locked]["type"] == "forbidden"
    assert out["destroyed"] == [other]
    assert list(get(alice, account, [locked])) == [locked]
    set_ok(alice, account, update={locked: {"tags/locked": None}})
    assert set_ok(alice, account, destroy=[locked])["destroyed"] == [locked]


# -- creation ids in update and destroy (§5.3, erratum) -------------------------------------


def test_creation_ids_as_update_and_destroy_keys(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("set")
    response = alice.request(
        [
            [
                "Note/set",
                {
                    "accountId": account,
                    "create": {"n1": {"title": "one", "tags": {tag: True}}},
                    "update": {"#n1": {"body": "same call"}},
                },
                "c1",
            ],
            [
                "Note/set",
                {
                    "accountId": account,
                    "create": {"n2": {"title": "two", "tags": {tag: True}}},
                    "update": {"#n1": {"title": "later call"}},
                    "destroy": ["#n2"],
                },
                "c2",
            ],
        ]
    )["methodResponses"]
    first, second = response[0][1], response[1][1]
    n1 = first["created"]["n1"]["id"]
    n2 = second["created"]["n2"]["id"]
    assert first["updated"] == {n1: {"size": 9}}
    assert second["updated"] == {n1: None}
    assert second["destroyed"] == [n2]
    assert tagged(alice, account, tag) == [n1]
    got = get(alice, account, [n1])[n1]
    assert (got["title"], got["body"]) == ("later call", "same call")


# -- limits ----------------------------------------------------------------------------------


def test_more_than_max_objects_in_set_is_request_too_large(
    alice: Client, ids: dict[str, str]
) -> None:
    account = ids["alice"]
    limit = limits(alice)["maxObjectsInSet"]
    tag = unique("set")
    before = state(alice, account)
    many = {f"n{i}": {"title": "x", "tags": {tag: True}} for i in range(limit + 1)}
    out = error(alice, "Note/set", {"accountId": account, "create": many})
    assert out["type"] == "requestTooLarge"
    # Creates, updates and destroys count together.
    split = {
        "accountId": account,
        "create": dict(list(many.items())[: limit - 1]),
        "update": {"a": {"title": "y"}},
        "destroy": ["b"],
    }
    assert error(alice, "Note/set", split)["type"] == "requestTooLarge"
    assert state(alice, account) == before
    # Exactly the limit is accepted.
    made = create(alice, account, dict(list(many.items())[:limit]))
    assert len(made) == limit
    out = set_ok(alice, account, destroy=list(made.values()))
    assert sorted(out["destroyed"]) == sorted(made.values())
    assert tagged(alice, account, tag) == []
