"""RFC 8620 §5.2: Foo/changes, on the Note test type."""

from __future__ import annotations

from typing import Any

from tests.conformance.notes import create, create_one, error, set_ok, state, unique
from tests.conftest import Client


def changes(client: Client, account: str, since: str, **args: Any) -> dict[str, Any]:
    return client.ok("Note/changes", {"accountId": account, "sinceState": since, **args})


def walk(client: Client, account: str, since: str, max_changes: int) -> list[dict[str, Any]]:
    """Every page from `since` until hasMoreChanges is false, checking each page's shape."""
    pages = []
    for _ in range(1000):
        page = changes(client, account, since, maxChanges=max_changes)
        assert page["oldState"] == since
        assert len(page["created"] + page["updated"] + page["destroyed"]) <= max_changes
        pages.append(page)
        if not page["hasMoreChanges"]:
            assert page["newState"] == state(client, account)
            return pages
        assert page["newState"] != since
        since = page["newState"]
    raise AssertionError("hasMoreChanges never became false")


def test_no_changes(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    create_one(alice, account, title=unique("changes"))
    now = state(alice, account)
    assert changes(alice, account, now) == {
        "accountId": account,
        "oldState": now,
        "newState": now,
        "hasMoreChanges": False,
        "created": [],
        "updated": [],
        "destroyed": [],
    }


def test_created_updated_destroyed(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    old = create(alice, account, {c: {"title": unique("changes")} for c in "abcd"})
    since = state(alice, account)
    new = create(alice, account, {c: {"title": unique("changes")} for c in "efg"})
    set_ok(alice, account, update={old["a"]: {"priority": 1}})
    set_ok(alice, account, update={old["a"]: {"priority": 2}, new["f"]: {"body": "x"}})
    set_ok(alice, account, destroy=[old["b"], new["g"]], update={old["c"]: {"title": "c"}})
    set_ok(alice, account, destroy=[old["c"]])
    out = changes(alice, account, since)
    assert out["accountId"] == account
    assert out["oldState"] == since
    assert out["newState"] == state(alice, account)
    assert out["hasMoreChanges"] is False
    # Created then updated: only created. Created then destroyed: nowhere. Updated then
    # destroyed: only destroyed (the SHOULDs of §5.2).
    assert sorted(out["created"]) == sorted([new["e"], new["f"]])
    assert out["updated"] == [old["a"]]
    assert sorted(out["destroyed"]) == sorted([old["b"], old["c"]])
    assert old["d"] not in out["created"] + out["updated"] + out["destroyed"]


def test_changes_from_an_intermediate_state(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    first = create_one(alice, account, title=unique("changes"))
    since = state(alice, account)
    set_ok(alice, account, update={first: {"title": "renamed"}})
    middle = state(alice, account)
    second = create_one(alice, account, title=unique("changes"))
    set_ok(alice, account, destroy=[first])
    out = changes(alice, account, since)
    assert (out["created"], out["updated"], out["destroyed"]) == ([second], [], [first])
    out = changes(alice, account, middle)
    assert (out["created"], out["updated"], out["destroyed"]) == ([second], [], [first])


def test_states_are_per_type(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    folders = state(alice, account, "Folder")
    create_one(alice, account, title=unique("changes"))
    assert state(alice, account, "Folder") == folders
    out = alice.ok("Folder/changes", {"accountId": account, "sinceState": folders})
    assert (out["created"], out["updated"], out["destroyed"]) == ([], [], [])
    assert out["newState"] == folders


def test_max_changes_pages_through_every_change_once(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    old = [create_one(alice, account, title=unique("changes")) for _ in range(4)]
    since = state(alice, account)
    # One record per write, so every change has a state of its own to stop at.
    new = [create_one(alice, account, title=unique("changes")) for _ in range(5)]
    set_ok(alice, account, update={old[0]: {"priority": 1}})
    set_ok(alice, account, update={old[1]: {"priority": 1}})
    set_ok(alice, account, destroy=[old[2]])
    pages = walk(alice, account, since, 3)
    assert len(pages) == 3
    assert [p["hasMoreChanges"] for p in pages] == [True, True, False]
    states = [p["newState"] for p in pages]
    assert len(set(states)) == 3
    created = [id for p in pages for id in p["created"]]
    updated = [id for p in pages for id in p["updated"]]
    destroyed = [id for p in pages for id in p["destroyed"]]
    assert sorted(created) == sorted(new)
    assert sorted(updated) == sorted(old[:2])
    assert destroyed == [old[2]]
    # An intermediate state works like any other state.
    rest = changes(alice, account, pages[0]["newState"])
    assert sorted(rest["created"] + rest["updated"] + rest["destroyed"]) == sorted(
        [id for p in pages[1:] for id in p["created"] + p["updated"] + p["destroyed"]]
    )


def test_paging_never_contradicts_itself(alice: Client, ids: dict[str, str]) -> None:
    # Records changed several times across the window, walked one change at a time: each id
    # is reported once, and never as created after being reported updated or destroyed.
    account = ids["alice"]
    old = create(alice, account, {c: {"title": unique("changes")} for c in "ab"})
    since = state(alice, account)
    x = create_one(alice, account, title=unique("changes"))
    y = create_one(alice, account, title=unique("changes"))
    set_ok(alice, account, update={old["a"]: {"priority": 3}})
    z = create_one(alice, account, title=unique("changes"))
    set_ok(alice, account, update={x: {"priority": 3}})
    set_ok(alice, account, destroy=[y])
    set_ok(alice, account, destroy=[old["b"]])
    set_ok(alice, account, update={old["a"]: {"priority": 4}})
    set_ok(alice, account, update={z: {"priority": 3}})
    pages = walk(alice, account, since, 1)
    seen: dict[str, str] = {}
    for page in pages:
        for kind in ("created", "updated", "destroyed"):
            for id in page[kind]:
                assert id not in seen, (id, seen, pages)
                seen[id] = kind
    assert seen[old["a"]] == "updated"
    assert seen[old["b"]] == "destroyed"
    assert seen[x] in ("created", "updated")
    assert seen[z] in ("created", "updated")
    assert seen.get(y, "destroyed") == "destroyed"  # created and destroyed: nowhere, or destroyed
    assert set(seen) - {y} == {old["a"], old["b"], x, z}


def test_more_changes_in_one_state_than_max_changes(alice: Client, ids: dict[str, str]) -> None:
    """Issue 10: one transaction that changed more records than maxChanges made every older
    state cannotCalculateChanges. Pages now end inside one modseq, with intermediate states:
    every record is reported, none is reported created twice, and one created and destroyed
    meanwhile not at all. (A record not yet reported that changes between the pages moves
    past the page boundary and is reported as updated: the client fetches it either way.)"""
    account = ids["alice"]
    since = state(alice, account)
    made = create(alice, account, {c: {"title": unique("changes")} for c in "abcdefg"})
    first = changes(alice, account, since, maxChanges=3)
    assert len(first["created"]) == 3 and first["hasMoreChanges"] is True
    assert first["updated"] == first["destroyed"] == []
    # Between the pages: one record already reported changes, one not yet reported too,
    # and one not yet reported goes.
    reported = first["created"][0]
    unreported = sorted(set(made.values()) - set(first["created"]))
    set_ok(alice, account, update={reported: {"priority": 5}, unreported[0]: {"priority": 6}},
           destroy=[unreported[1]])  # fmt: skip
    pages = [first, *walk(alice, account, first["newState"], 3)]
    seen: dict[str, list[str]] = {}
    for page in pages:
        for kind in ("created", "updated", "destroyed"):
            for id in page[kind]:
                seen.setdefault(id, []).append(kind)
    assert seen[reported] == ["created", "updated"]
    assert seen[unreported[0]] in (["created"], ["updated"])
    assert seen.get(unreported[1], ["destroyed"]) == ["destroyed"]  # never had: nowhere, or gone
    assert sorted(set(seen) - {unreported[1]}) == sorted(set(made.values()) - {unreported[1]})
    assert all(kinds.count("created") <= 1 for kinds in seen.values())
    # Without changes between the pages, each record is reported exactly once, as created.
    since = state(alice, account)
    made = create(alice, account, {c: {"title": unique("changes")} for c in "abcdefgh"})
    pages = walk(alice, account, since, 3)
    assert len(pages) == 3
    assert sorted(id for page in pages for id in page["created"]) == sorted(made.values())


def test_max_changes_must_be_positive(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    since = state(alice, account)
    for bad in (0, -1, 1.5, "10"):
        args = {"accountId": account, "sinceState": since, "maxChanges": bad}
        assert error(alice, "Note/changes", args)["type"] == "invalidArguments", bad
    assert changes(alice, account, since, maxChanges=None)["hasMoreChanges"] is False


def test_unknown_state_cannot_be_calculated(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    create_one(alice, account, title=unique("changes"))
    current = state(alice, account)
    # jmapd's states are decimal counters: a larger one is a state the server never gave.
    future = str(int(current) + 1_000_000)
    for since in ("not-a-state", "", "-1", future):
        args = {"accountId": account, "sinceState": since}
        assert error(alice, "Note/changes", args)["type"] == "cannotCalculateChanges", since


def test_updated_properties_when_only_counts_changed(alice: Client, ids: dict[str, str]) -> None:
    """RFC 8621 §2.2 (for every type that shows counts of other records, as Mailbox does):
    when the updated records changed only in their counts, updatedProperties names the counts;
    when anything else changed too, it is null. The test type Folder counts its notes."""
    account = ids["alice"]
    made = alice.ok("Folder/set", {"accountId": account, "create": {"f": {"name": "counted"}}})
    folder, state = made["created"]["f"]["id"], made["newState"]
    alice.ok(
        "Note/set",
        {"accountId": account, "create": {"n": {"title": "in folder", "folderId": folder}}},
    )
    changes = alice.ok("Folder/changes", {"accountId": account, "sinceState": state})
    assert changes["updated"] == [folder]
    assert changes["updatedProperties"] == ["noteCount"]
    got = alice.ok(
        "Folder/get", {"accountId": account, "ids": [folder], "properties": ["noteCount"]}
    )
    assert got["list"] == [{"id": folder, "noteCount": 1}]
    alice.ok("Folder/set", {"accountId": account, "update": {folder: {"name": "renamed"}}})
    changes = alice.ok("Folder/changes", {"accountId": account, "sinceState": state})
    assert changes["updated"] == [folder]
    assert changes["updatedProperties"] is None
    # A type without counts has no updatedProperties at all.
    note_state = alice.ok("Note/get", {"accountId": account, "ids": []})["state"]
    assert "updatedProperties" not in alice.ok(
        "Note/changes", {"accountId": account, "sinceState": note_state}
    )
