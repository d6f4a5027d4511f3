"""RFC 8620 §5.4: Foo/copy between accounts. alice may use her own account and bob's fully,
and carol's read-only."""

from __future__ import annotations

from typing import Any

from tests.conformance.notes import (
    ID,
    UTC_DATE,
    create_one,
    get,
    set_ok,
    state,
    unique,
)
from tests.conftest import Client, Server


def copy(client: Client, **args: Any) -> list[list[Any]]:
    """A Note/copy call; return every response it produced (with the implicit Note/set)."""
    responses: list[list[Any]] = client.request([["Note/copy", args, "copy"]])["methodResponses"]
    assert all(r[2] == "copy" for r in responses), responses
    return responses


def copy_ok(client: Client, **args: Any) -> dict[str, Any]:
    [[name, out, _]] = copy(client, **args)
    assert name == "Note/copy", out
    return out


def copy_error(client: Client, **args: Any) -> dict[str, Any]:
    [[name, out, _]] = copy(client, **args)
    assert name == "error", out
    return out


def test_copy_creates_a_new_record(alice: Client, ids: dict[str, str]) -> None:
    source = create_one(
        alice, ids["bob"], title=unique("copy"), body="bodyâ", tags={"t": True}, priority=2
    )
    original = get(alice, ids["bob"], [source])[source]
    before = state(alice, ids["alice"])
    out = copy_ok(
        alice,
        fromAccountId=ids["bob"],
        accountId=ids["alice"],
        create={"c1": {"id": source}},
    )
    assert out["fromAccountId"] == ids["bob"]
    assert out["accountId"] == ids["alice"]
    assert out["oldState"] == before
    assert out["newState"] == state(alice, ids["alice"]) != before
    assert out["notCreated"] is None
    created = out["created"]["c1"]
    # The properties set by the server: a new id, and created and size.
    assert set(created) == {"id", "created", "size"}
    assert ID.match(created["id"])
    assert UTC_DATE.match(created["created"])
    assert created["size"] == 6
    copied = get(alice, ids["alice"], [created["id"]])[created["id"]]
    same = ("title", "body", "tags", "priority", "kind", "folderId")
    assert {k: copied[k] for k in same} == {k: original[k] for k in same}
    assert {k: copied[k] for k in ("id", "created", "size")} == created
    # The original is untouched.
    assert get(alice, ids["bob"], [source])[source] == original


def test_copy_the_other_way_and_from_a_read_only_account(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    source = create_one(alice, ids["alice"], title=unique("copy"))
    out = copy_ok(
        alice, fromAccountId=ids["alice"], accountId=ids["bob"], create={"c": {"id": source}}
    )
    assert list(get(alice, ids["bob"], [out["created"]["c"]["id"]])) == [out["created"]["c"]["id"]]
    # Reading from carol's read-only account is allowed.
    carol = server.client("carol@example.com")
    theirs = create_one(carol, ids["carol"], title="carol's")
    out = copy_ok(
        alice, fromAccountId=ids["carol"], accountId=ids["alice"], create={"c": {"id": theirs}}
    )
    copied = out["created"]["c"]["id"]
    assert get(alice, ids["alice"], [copied])[copied]["title"] == "carol's"


def test_overrides_are_applied(alice: Client, ids: dict[str, str]) -> None:
    source = create_one(alice, ids["bob"], title=unique("copy"), body="abc", priority=1)
    out = copy_ok(
        alice,
        fromAccountId=ids["bob"],
        accountId=ids["alice"],
        create={"c": {"id": source, "title": "overridden", "body": "abcdefgh", "kind": "x"}},
    )
    created = out["created"]["c"]
    assert created["size"] == 8
    copied = get(alice, ids["alice"], [created["id"]])[created["id"]]
    assert (copied["title"], copied["body"], copied["kind"], copied["priority"]) == (
        "overridden",
        "abcdefgh",
        "x",
        1,
    )
    assert get(alice, ids["bob"], [source])[source]["title"] != "overridden"


def test_per_record_errors(alice: Client, ids: dict[str, str]) -> None:
    source = create_one(alice, ids["bob"], title=unique("copy"))
    before = state(alice, ids["alice"])
    out = copy_ok(
        alice,
        fromAccountId=ids["bob"],
        accountId=ids["alice"],
        create={
            "missing": {"id": "nosuchnote"},
            "bad": {"id": source, "priority": "high"},
            "serverset": {"id": source, "size": 1},
            "good": {"id": source},
        },
    )
    assert list(out["created"]) == ["good"]
    assert out["notCreated"]["missing"]["type"] == "notFound"
    assert out["notCreated"]["bad"]["type"] == "invalidProperties"
    assert out["notCreated"]["bad"]["properties"] == ["priority"]
    assert out["notCreated"]["serverset"]["type"] == "invalidProperties"
    assert out["notCreated"]["serverset"]["properties"] == ["size"]
    assert out["oldState"] == before
    nothing = copy_ok(
        alice,
        fromAccountId=ids["bob"],
        accountId=ids["alice"],
        create={"missing": {"id": "nosuchnote"}},
    )
    assert nothing["created"] is None
    assert nothing["newState"] == nothing["oldState"] == state(alice, ids["alice"])


def test_account_errors(alice: Client, ids: dict[str, str]) -> None:
    source = create_one(alice, ids["bob"], title=unique("copy"))
    create = {"c": {"id": source}}
    same = copy_error(alice, fromAccountId=ids["bob"], accountId=ids["bob"], create=create)
    assert same["type"] == "invalidArguments"
    unknown = copy_error(
        alice, fromAccountId="anosuchaccount", accountId=ids["alice"], create=create
    )
    assert unknown["type"] == "fromAccountNotFound"
    read_only = copy_error(alice, fromAccountId=ids["bob"], accountId=ids["carol"], create=create)
    assert read_only["type"] == "accountReadOnly"


def test_state_checks(alice: Client, ids: dict[str, str]) -> None:
    source = create_one(alice, ids["bob"], title=unique("copy"))
    from_state = state(alice, ids["bob"])
    to_state = state(alice, ids["alice"])
    stale_from = str(from_state) + "0"
    create_one(alice, ids["alice"], title=unique("copy"))
    stale_to, to_state = to_state, state(alice, ids["alice"])
    base = {"fromAccountId": ids["bob"], "accountId": ids["alice"], "create": {"c": {"id": source}}}
    assert copy_error(alice, **base, ifFromInState=stale_from)["type"] == "stateMismatch"
    assert copy_error(alice, **base, ifInState=stale_to)["type"] == "stateMismatch"
    assert state(alice, ids["alice"]) == to_state  # nothing was copied
    out = copy_ok(alice, **base, ifFromInState=from_state, ifInState=to_state)
    assert out["oldState"] == to_state
    assert list(out["created"]) == ["c"]


def test_on_success_destroy_original(alice: Client, ids: dict[str, str]) -> None:
    moved = create_one(alice, ids["bob"], title=unique("copy"))
    locked = create_one(alice, ids["bob"], title=unique("copy"), tags={"locked": True})
    bob_before = state(alice, ids["bob"])
    responses = copy(
        alice,
        fromAccountId=ids["bob"],
        accountId=ids["alice"],
        create={
            "m": {"id": moved},
            "l": {"id": locked},
            "x": {"id": "nosuchnote"},
        },
        onSuccessDestroyOriginal=True,
    )
    assert [r[0] for r in responses] == ["Note/copy", "Note/set"]
    copied, destroyed = responses[0][1], responses[1][1]
    assert sorted(copied["created"]) == ["l", "m"]
    assert list(copied["notCreated"]) == ["x"]
    # One implicit Note/set in the from-account, for the originals copied.
    assert destroyed["accountId"] == ids["bob"]
    assert destroyed["oldState"] == bob_before
    assert destroyed["destroyed"] == [moved]
    assert destroyed["notDestroyed"][locked]["type"] == "forbidden"
    assert destroyed["created"] is None and destroyed["updated"] is None
    assert get(alice, ids["bob"], [moved, locked]).keys() == {locked}
    new_ids = [copied["created"][c]["id"] for c in ("m", "l")]
    assert get(alice, ids["alice"], new_ids).keys() == set(new_ids)


def test_destroy_from_if_in_state(alice: Client, ids: dict[str, str]) -> None:
    source = create_one(alice, ids["bob"], title=unique("copy"))
    current = state(alice, ids["bob"])
    base = {
        "fromAccountId": ids["bob"],
        "accountId": ids["alice"],
        "onSuccessDestroyOriginal": True,
    }
    responses = copy(
        alice, **base, create={"c": {"id": source}}, destroyFromIfInState=current + "0"
    )
    assert [r[0] for r in responses] == ["Note/copy", "error"]
    assert responses[1][1]["type"] == "stateMismatch"
    assert list(responses[0][1]["created"]) == ["c"]
    assert list(get(alice, ids["bob"], [source])) == [source]  # not destroyed
    responses = copy(alice, **base, create={"d": {"id": source}}, destroyFromIfInState=current)
    assert [r[0] for r in responses] == ["Note/copy", "Note/set"]
    assert responses[1][1]["destroyed"] == [source]
    assert responses[1][1]["oldState"] == current


def test_created_ids_of_a_copy_can_be_referenced(alice: Client, ids: dict[str, str]) -> None:
    source = create_one(alice, ids["bob"], title=unique("copy"))
    response = alice.request(
        [
            [
                "Note/copy",
                {
                    "fromAccountId": ids["bob"],
                    "accountId": ids["alice"],
                    "create": {"moved": {"id": source}},
                },
                "c1",
            ],
            ["Note/get", {"accountId": ids["alice"], "ids": ["#moved"], "properties": []}, "c2"],
        ]
    )["methodResponses"]
    new_id = response[0][1]["created"]["moved"]["id"]
    assert response[1][1]["list"] == [{"id": new_id}]


def test_copy_then_destroy_keeps_states_apart(alice: Client, ids: dict[str, str]) -> None:
    # The copy changes only the target account's state; the implicit set only the source's.
    source = create_one(alice, ids["bob"], title=unique("copy"))
    bob_before, alice_before = state(alice, ids["bob"]), state(alice, ids["alice"])
    out = copy_ok(
        alice, fromAccountId=ids["bob"], accountId=ids["alice"], create={"c": {"id": source}}
    )
    assert state(alice, ids["bob"]) == bob_before
    assert out["oldState"] == alice_before
    set_ok(alice, ids["bob"], destroy=[source])
    assert state(alice, ids["alice"]) == out["newState"]
