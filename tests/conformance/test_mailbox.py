"""RFC 8621 §2: Mailbox/get, /changes, /query, /queryChanges, /set."""

from __future__ import annotations

from typing import Any

from tests.conformance import notes
from tests.conftest import Client, Server, jmapd

RIGHTS = [
    "mayReadItems", "mayAddItems", "mayRemoveItems", "maySetSeen", "maySetKeywords",
    "mayCreateChild", "mayRename", "mayDelete", "maySubmit",
]  # fmt: skip
COUNTS = {"totalEmails": 0, "unreadEmails": 0, "totalThreads": 0, "unreadThreads": 0}


def fresh_account(server: Server) -> tuple[Client, str]:
    """A new account made with the CLI, so it holds exactly the default mailboxes."""
    return notes.fresh_account(server, "mb")


def mailboxes(client: Client, account_id: str) -> dict[str, dict[str, Any]]:
    """name → Mailbox."""
    found = client.ok("Mailbox/get", {"accountId": account_id, "ids": None})["list"]
    return {m["name"]: m for m in found}


def create(client: Client, account_id: str, **props: Any) -> dict[str, Any]:
    """Mailbox/set create of one mailbox; returns the set response."""
    return client.ok("Mailbox/set", {"accountId": account_id, "create": {"m": props}})


def created_id(client: Client, account_id: str, **props: Any) -> str:
    result = create(client, account_id, **props)
    assert result["notCreated"] is None, result["notCreated"]
    return str(result["created"]["m"]["id"])


def not_created(client: Client, account_id: str, **props: Any) -> dict[str, Any]:
    result = create(client, account_id, **props)
    assert result["created"] is None, result
    return dict(result["notCreated"]["m"])


def test_a_new_account_has_the_default_mailboxes(server: Server) -> None:
    client, account_id = fresh_account(server)
    found = mailboxes(client, account_id)
    assert sorted((m["sortOrder"], m["name"], m["role"]) for m in found.values()) == [
        (1, "Inbox", "inbox"),
        (2, "Drafts", "drafts"),
        (3, "Sent", "sent"),
        (4, "Archive", "archive"),
        (5, "Junk", "junk"),
        (6, "Trash", "trash"),
    ]
    inbox = found["Inbox"]
    assert set(inbox) == {
        "id", "name", "parentId", "role", "sortOrder", "totalEmails", "unreadEmails",
        "totalThreads", "unreadThreads", "myRights", "isSubscribed",
    }  # fmt: skip
    assert inbox["parentId"] is None
    assert inbox["isSubscribed"] is True
    assert {k: inbox[k] for k in COUNTS} == COUNTS
    assert inbox["myRights"] == dict.fromkeys(RIGHTS, True)


def test_migrate_does_not_add_mailboxes_twice(server: Server) -> None:
    client, account_id = fresh_account(server)
    jmapd(server.data, "migrate")
    assert len(mailboxes(client, account_id)) == 6


def test_rights_in_a_read_only_account(alice: Client, ids: dict[str, str]) -> None:
    """carol's account is shared read-only with alice: she may only read its items."""
    found = mailboxes(alice, ids["carol"])
    assert found["Inbox"]["myRights"] == {r: r == "mayReadItems" for r in RIGHTS}


def test_create_returns_server_set_and_default_properties(server: Server) -> None:
    client, account_id = fresh_account(server)
    result = create(client, account_id, name="Projects")
    created = result["created"]["m"]
    assert set(created) == {
        "id", "parentId", "role", "sortOrder", "totalEmails", "unreadEmails", "totalThreads",
        "unreadThreads", "myRights", "isSubscribed",
    }  # fmt: skip
    assert created["parentId"] is None and created["role"] is None
    assert created["sortOrder"] == 0 and created["isSubscribed"] is True
    assert {k: created[k] for k in COUNTS} == COUNTS
    assert created["myRights"] == dict.fromkeys(RIGHTS, True)


def test_children_and_creation_id_parents(server: Server) -> None:
    client, account_id = fresh_account(server)
    result = client.ok(
        "Mailbox/set",
        {
            "accountId": account_id,
            "create": {
                "p": {"name": "Parent"},
                "c": {"name": "Child", "parentId": "#p"},
            },
        },
    )
    parent, child = result["created"]["p"]["id"], result["created"]["c"]["id"]
    assert mailboxes(client, account_id)["Child"]["parentId"] == parent
    # The same name is fine under another parent, not beside a sibling: that is
    # alreadyExists with the sibling's id (a ruling where the RFC is silent, issue 9).
    top_child = created_id(client, account_id, name="Child")
    error = not_created(client, account_id, name="Child", parentId=parent)
    assert error["type"] == "alreadyExists" and error["existingId"] == child
    error = not_created(client, account_id, name="Child")
    assert error["type"] == "alreadyExists" and error["existingId"] == top_child
    # Renaming onto a sibling's name too.
    result = client.ok(
        "Mailbox/set",
        {"accountId": account_id, "update": {top_child: {"name": "Parent"}}},
    )
    assert result["notUpdated"][top_child]["type"] == "alreadyExists"
    assert result["notUpdated"][top_child]["existingId"] == parent


def test_one_mailbox_per_role(server: Server) -> None:
    client, account_id = fresh_account(server)
    error = not_created(client, account_id, name="Inbox 2", role="inbox")
    assert error["type"] == "invalidProperties" and error["properties"] == ["role"]
    assert created_id(client, account_id, name="Flagged", role="flagged")
    error = not_created(client, account_id, name="Flagged 2", role="flagged")
    assert error["properties"] == ["role"]


def test_invalid_properties(server: Server) -> None:
    client, account_id = fresh_account(server)
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"name": ""}, ["name"]),
        ({"name": "bad\x07name"}, ["name"]),
        ({"name": "x" * 256}, ["name"]),
        ({"name": 5}, ["name"]),
        ({"name": "ok", "role": "INBOX"}, ["role"]),
        ({"name": "ok", "role": "no-such-role"}, ["role"]),
        ({"name": "ok", "sortOrder": 2**31}, ["sortOrder"]),
        ({"name": "ok", "sortOrder": -1}, ["sortOrder"]),
        ({"name": "ok", "parentId": "nonexistent"}, ["parentId"]),
        ({"name": "ok", "totalEmails": 3}, ["totalEmails"]),
        ({"name": "ok", "myRights": {}}, ["myRights"]),
        ({}, ["name"]),
    ]
    for props, bad in cases:
        error = not_created(client, account_id, **props)
        assert error["type"] == "invalidProperties", (props, error)
        assert error["properties"] == bad, (props, error)


def test_no_loops_and_a_depth_limit(server: Server) -> None:
    client, account_id = fresh_account(server)
    depth = client.session()["accounts"][account_id]["accountCapabilities"][
        "urn:ietf:params:jmap:mail"
    ]["maxMailboxDepth"]
    chain = [created_id(client, account_id, name="level 1")]
    for level in range(2, depth + 1):
        chain.append(created_id(client, account_id, name=f"level {level}", parentId=chain[-1]))
    error = not_created(client, account_id, name="too deep", parentId=chain[-1])
    assert error["properties"] == ["parentId"]
    # Moving the top under its own descendant would make a loop.
    result = client.ok(
        "Mailbox/set", {"accountId": account_id, "update": {chain[0]: {"parentId": chain[2]}}}
    )
    assert result["notUpdated"][chain[0]]["type"] == "invalidProperties"
    assert result["notUpdated"][chain[0]]["properties"] == ["parentId"]
    # Moving a subtree under another mailbox must keep it within the depth too.
    other = created_id(client, account_id, name="other")
    result = client.ok(
        "Mailbox/set", {"accountId": account_id, "update": {chain[0]: {"parentId": other}}}
    )
    assert result["notUpdated"][chain[0]]["properties"] == ["parentId"]
    result = client.ok(
        "Mailbox/set", {"accountId": account_id, "update": {chain[-1]: {"parentId": other}}}
    )
    assert result["updated"] == {chain[-1]: None}


def test_destroy_rules(server: Server) -> None:
    client, account_id = fresh_account(server)
    parent = created_id(client, account_id, name="Parent")
    child = created_id(client, account_id, name="Child", parentId=parent)
    result = client.ok("Mailbox/set", {"accountId": account_id, "destroy": [parent]})
    assert result["notDestroyed"][parent]["type"] == "mailboxHasChild"
    result = client.ok(
        "Mailbox/set",
        {"accountId": account_id, "destroy": [child, parent], "onDestroyRemoveEmails": True},
    )
    assert result["destroyed"] == [child, parent]
    name, error = client.call(
        "Mailbox/set", {"accountId": account_id, "destroy": [], "onDestroyRemoveEmails": "yes"}
    )
    assert (name, error["type"]) == ("error", "invalidArguments")


def test_rename_and_changes(server: Server) -> None:
    client, account_id = fresh_account(server)
    state = client.ok("Mailbox/get", {"accountId": account_id, "ids": []})["state"]
    inbox = mailboxes(client, account_id)["Inbox"]["id"]
    new = created_id(client, account_id, name="New")
    client.ok("Mailbox/set", {"accountId": account_id, "update": {inbox: {"name": "Posteingang"}}})
    changes = client.ok("Mailbox/changes", {"accountId": account_id, "sinceState": state})
    assert changes["created"] == [new]
    assert changes["updated"] == [inbox]
    assert changes["destroyed"] == []
    assert mailboxes(client, account_id)["Posteingang"]["role"] == "inbox"


def query_ids(client: Client, account_id: str, **args: Any) -> list[str]:
    return list(client.ok("Mailbox/query", {"accountId": account_id, **args})["ids"])


def test_query_filters_and_sorts(server: Server) -> None:
    client, account_id = fresh_account(server)
    by_name = {name: m["id"] for name, m in mailboxes(client, account_id).items()}
    work = created_id(client, account_id, name="Work", sortOrder=10, isSubscribed=False)
    reports = created_id(client, account_id, name="Reports", parentId=work, sortOrder=1)
    by_name |= {"Work": work, "Reports": reports}
    order = ["Inbox", "Drafts", "Sent", "Archive", "Junk", "Trash", "Work"]
    sort = [{"property": "sortOrder"}, {"property": "name"}]
    assert query_ids(client, account_id, filter={"parentId": None}, sort=sort) == [
        by_name[n] for n in order
    ]
    assert query_ids(client, account_id, filter={"parentId": work}) == [reports]
    assert query_ids(client, account_id, filter={"role": "junk"}) == [by_name["Junk"]]
    assert query_ids(client, account_id, filter={"role": None}, sort=sort) == [reports, work]
    assert len(query_ids(client, account_id, filter={"hasAnyRole": True})) == 6
    assert query_ids(client, account_id, filter={"isSubscribed": False}) == [work]
    assert query_ids(client, account_id, filter={"name": "REP"}) == [reports]
    names = sorted(by_name, key=str.casefold)
    assert query_ids(client, account_id, sort=[{"property": "name"}]) == [by_name[n] for n in names]
    name, error = client.call(
        "Mailbox/query", {"accountId": account_id, "filter": {"totalEmails": 1}}
    )
    assert (name, error["type"]) == ("error", "unsupportedFilter")
    name, error = client.call(
        "Mailbox/query", {"accountId": account_id, "sort": [{"property": "role"}]}
    )
    assert (name, error["type"]) == ("error", "unsupportedSort")


def test_sort_as_tree_and_filter_as_tree(server: Server) -> None:
    """§2.3: parents before children, siblings by the comparators; filterAsTree drops a
    mailbox whose ancestor did not match."""
    client, account_id = fresh_account(server)
    a = created_id(client, account_id, name="a-top", sortOrder=50)
    a2 = created_id(client, account_id, name="a-two", parentId=a, sortOrder=2)
    a1 = created_id(client, account_id, name="a-one", parentId=a, sortOrder=1)
    a11 = created_id(client, account_id, name="a-one-one", parentId=a1)
    b = created_id(client, account_id, name="b-top", sortOrder=40)
    sort = [{"property": "sortOrder"}, {"property": "name"}]
    ids = query_ids(client, account_id, filter={"role": None}, sort=sort, sortAsTree=True)
    assert ids == [b, a, a1, a11, a2]
    flat = query_ids(client, account_id, filter={"role": None}, sort=sort)
    assert flat == [a11, a1, a2, b, a]
    matching = query_ids(client, account_id, filter={"name": "one"}, sortAsTree=True)
    assert matching == [a1, a11]
    rooted = query_ids(
        client, account_id, filter={"name": "a-"}, sort=sort, sortAsTree=True, filterAsTree=True
    )
    assert rooted == [a, a1, a11, a2]
    assert query_ids(client, account_id, filter={"name": "one"}, filterAsTree=True) == []


def test_query_changes(server: Server) -> None:
    client, account_id = fresh_account(server)
    sort = [{"property": "name"}]
    before = client.ok("Mailbox/query", {"accountId": account_id, "sort": sort})
    new = created_id(client, account_id, name="Aardvark")
    changes = client.ok(
        "Mailbox/queryChanges",
        {"accountId": account_id, "sort": sort, "sinceQueryState": before["queryState"]},
    )
    assert changes["removed"] == []
    assert changes["added"] == [{"id": new, "index": 0}]


def test_changes_has_updated_properties(server: Server) -> None:
    """§2.2: Mailbox/changes always has updatedProperties; null when more than counts
    changed."""
    client, account_id = fresh_account(server)
    state = client.ok("Mailbox/get", {"accountId": account_id, "ids": []})["state"]
    inbox = mailboxes(client, account_id)["Inbox"]["id"]
    client.ok("Mailbox/set", {"accountId": account_id, "update": {inbox: {"sortOrder": 9}}})
    changes = client.ok("Mailbox/changes", {"accountId": account_id, "sinceState": state})
    assert changes["updated"] == [inbox]
    assert changes["updatedProperties"] is None
