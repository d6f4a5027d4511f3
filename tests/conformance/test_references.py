"""RFC 8620 §3.7 result references, and creation ids (§3.3 createdIds, §3.4, §5.3).

The shared fixture server holds other tests' records too, so every test scopes its Notes by a
title marker of its own. Core/echo (§4) shows exactly what a reference resolved to: it returns
its arguments after the `#name` ones were replaced by their values.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Client


def marker(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def ref(result_of: str, name: str, path: str) -> dict[str, str]:
    return {"resultOf": result_of, "name": name, "path": path}


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records by id: /get may answer in any order (§5.1)."""
    out = {record["id"]: record for record in records}
    assert len(out) == len(records), records
    return out


def responses_by_id(response: dict[str, Any]) -> dict[str, list[Any]]:
    """Call id → [name, arguments] of its (only) response."""
    out: dict[str, list[Any]] = {}
    for name, args, call_id in response["methodResponses"]:
        assert call_id not in out, response
        out[call_id] = [name, args]
    return out


def resolved(client: Client, source: dict[str, Any], path: str) -> list[Any]:
    """The response to Core/echo {"#v": path into a Core/echo of `source`}."""
    response = client.request(
        [["Core/echo", source, "src"], ["Core/echo", {"#v": ref("src", "Core/echo", path)}, "r"]]
    )["methodResponses"]
    assert response[0] == ["Core/echo", source, "src"]
    return list(response[1])


def make_library(client: Client, account: str, title: str) -> dict[str, str]:
    """Folders f1, f2, f3 and notes n1…n6 (priorities 5…0), each folder listing its notes,
    made in one request with creation ids; returns creation id → id."""
    folders = {f"f{i}": {"name": f"{title} folder {i}"} for i in (1, 2, 3)}
    homes = {"n1": "f1", "n2": "f2", "n3": "f1", "n4": "f2", "n5": "f3", "n6": "f2"}
    notes = {
        cid: {"title": f"{title} {cid}", "priority": 6 - int(cid[1]), "folderId": "#" + folder}
        for cid, folder in homes.items()
    }
    members = {
        "#" + folder: {"noteIds": ["#" + n for n, home in homes.items() if home == folder]}
        for folder in folders
    }
    response = client.request(
        [
            ["Folder/set", {"accountId": account, "create": folders}, "0"],
            ["Note/set", {"accountId": account, "create": notes}, "1"],
            ["Folder/set", {"accountId": account, "update": members}, "2"],
        ]
    )
    made: dict[str, str] = {}
    for name, args, call_id in response["methodResponses"]:
        assert name in ("Folder/set", "Note/set"), args
        for failed in ("notCreated", "notUpdated", "notDestroyed"):
            assert args[failed] is None, (call_id, args)
        for cid, created in (args["created"] or {}).items():
            made[cid] = created["id"]
    assert sorted(made) == sorted([*folders, *notes])
    return made


def test_the_rfc_example_chain(alice: Client, ids: dict[str, str]) -> None:
    """§3.7: the RFC's four-call example (Email/query → Email/get threadId → Thread/get →
    Email/get of every emailId), with Note for Email, folderId for threadId, Folder for Thread
    and noteIds for emailIds. Echo calls beside it show each resolved argument exactly."""
    account, title = ids["alice"], marker("chain")
    made = make_library(alice, account, title)
    calls: list[list[Any]] = [
        [
            "Note/query",
            {
                "accountId": account,
                "filter": {"title": title, "minPriority": 1},
                "sort": [{"property": "priority", "isAscending": False}],
                "position": 0,
                "limit": 3,
                "calculateTotal": True,
            },
            "t0",
        ],
        [
            "Note/get",
            {
                "accountId": account,
                "#ids": ref("t0", "Note/query", "/ids"),
                "properties": ["folderId"],
            },
            "t1",
        ],
        [
            "Folder/get",
            {"accountId": account, "#ids": ref("t1", "Note/get", "/list/*/folderId")},
            "t2",
        ],
        [
            "Note/get",
            {
                "accountId": account,
                "#ids": ref("t2", "Folder/get", "/list/*/noteIds"),
                "properties": ["title", "priority"],
            },
            "t3",
        ],
        ["Core/echo", {"#ids": ref("t1", "Note/get", "/list/*/folderId")}, "e2"],
        ["Core/echo", {"#ids": ref("t2", "Folder/get", "/list/*/noteIds")}, "e3"],
    ]
    response = responses_by_id(alice.request(calls))
    assert [name for name, _ in response.values()] == [c[0] for c in calls]

    t0 = response["t0"][1]
    assert t0["ids"] == [made["n1"], made["n2"], made["n3"]]
    assert t0["total"] == 5
    assert t0["position"] == 0

    t1 = response["t1"][1]
    # The query's ids, with only id and folderId.
    assert by_id(t1["list"]) == {
        made["n1"]: {"id": made["n1"], "folderId": made["f1"]},
        made["n2"]: {"id": made["n2"], "folderId": made["f2"]},
        made["n3"]: {"id": made["n3"], "folderId": made["f1"]},
    }
    assert t1["notFound"] == []

    # `*` maps over the list: one folderId per note, in list order, duplicates kept.
    folder_ids = response["e2"][1]["ids"]
    assert folder_ids == [note["folderId"] for note in t1["list"]]
    assert sorted(folder_ids) == sorted([made["f1"], made["f2"], made["f1"]])

    t2 = response["t2"][1]
    # §5.1: an id asked for twice is answered once.
    assert by_id(t2["list"]) == {
        made["f1"]: {
            "id": made["f1"],
            "name": f"{title} folder 1",
            "noteIds": [made["n1"], made["n3"]],
            "noteCount": 2,
        },
        made["f2"]: {
            "id": made["f2"],
            "name": f"{title} folder 2",
            "noteIds": [made["n2"], made["n4"], made["n6"]],
            "noteCount": 3,
        },
    }
    assert t2["notFound"] == []

    # `*` then an array: the arrays are flattened into one, in order.
    note_ids = response["e3"][1]["ids"]
    assert note_ids == [n for folder in t2["list"] for n in folder["noteIds"]]
    assert sorted(note_ids) == sorted(made[n] for n in ("n1", "n3", "n2", "n4", "n6"))

    t3 = response["t3"][1]
    assert by_id(t3["list"]) == {
        made[n]: {"id": made[n], "title": f"{title} {n}", "priority": 6 - int(n[1])}
        for n in ("n1", "n2", "n3", "n4", "n6")
    }
    assert t3["notFound"] == []


def test_the_rfc_changes_example(alice: Client, ids: dict[str, str]) -> None:
    """§3.7: the first example, Foo/changes → Foo/get #ids /created."""
    account = ids["alice"]
    state = alice.ok("Note/get", {"accountId": account, "ids": []})["state"]
    title = marker("changes")
    created = alice.ok(
        "Note/set",
        {"accountId": account, "create": {"a": {"title": title}, "b": {"title": title}}},
    )["created"]
    response = alice.request(
        [
            ["Note/changes", {"accountId": account, "sinceState": state}, "t0"],
            [
                "Note/get",
                {"accountId": account, "#ids": ref("t0", "Note/changes", "/created")},
                "t1",
            ],
        ]
    )["methodResponses"]
    assert response[0][0] == "Note/changes"
    assert response[1][0] == "Note/get"
    # Other tests may write to the account meanwhile: ours are among the created ones.
    got = {note["id"]: note["title"] for note in response[1][1]["list"]}
    assert set(response[0][1]["created"]) == set(got)
    assert {created["a"]["id"], created["b"]["id"]} <= set(got)
    assert got[created["a"]["id"]] == got[created["b"]["id"]] == title


def test_json_pointer_escapes_and_indexes(alice: Client) -> None:
    """§3.7 step 3: the path is an RFC 6901 JSON Pointer: ~1 is /, ~0 is ~ (decoded in that
    order), array items by index, "" is the whole value, and `*` only maps over arrays."""
    source = {
        "a/b": {"m~n": ["x1", "x2"]},
        "~1": "tilde-one",
        "": {"": "empty keys"},
        "*": "a key named star",
        "list": [{"k": ["p", "q"]}, {"k": []}, {"k": ["r"]}],
        "nested": [[1, 2], [3], []],
        "objects": [{"id": "o1"}, {"id": "o2"}],
    }
    cases: dict[str, Any] = {
        "/a~1b/m~0n": ["x1", "x2"],
        "/a~1b/m~0n/0": "x1",
        "/a~1b/m~0n/1": "x2",
        "/~01": "tilde-one",
        "/": {"": "empty keys"},
        "//": "empty keys",
        "/*": "a key named star",
        "/list/2/k/0": "r",
        "/list/*/k": ["p", "q", "r"],
        "/nested/*": [1, 2, 3],
        "/objects/*": [{"id": "o1"}, {"id": "o2"}],
        "/objects/*/id": ["o1", "o2"],
        "/objects/1/id": "o2",
        "": source,
    }
    for path, value in cases.items():
        assert resolved(alice, source, path) == ["Core/echo", {"v": value}, "r"], path
    bad = ["/a~1b/*", "/list/*/k/0", "/a~2b", "/a/b", "/~1", "/list/3", "/list/-", "/list/01"]
    # RFC 6901 §4: an array index is ASCII digits; not other Unicode digits, and a huge one
    # is past the end like any other.
    bad += ["/list/\u0661", "/list/\u00b2", "/list/1.0", "/list/+1", "/list/" + "9" * 5000]
    for path in bad:
        response = resolved(alice, source, path)
        assert response[0] == "error", path
        assert response[1]["type"] == "invalidResultReference", path


def test_reference_finds_the_first_response_of_the_call(alice: Client, ids: dict[str, str]) -> None:
    """§3.7 step 1-2: the *first* response with that call id is taken, then its name is
    checked. Note/copy with onSuccessDestroyOriginal answers Note/copy then an implicit
    Note/set under the same call id (§5.4), so a reference naming Note/set fails."""
    title = marker("copy")
    source = alice.ok("Note/set", {"accountId": ids["bob"], "create": {"s": {"title": title}}})
    original = source["created"]["s"]["id"]
    copy = {
        "fromAccountId": ids["bob"],
        "accountId": ids["alice"],
        "create": {"c": {"id": original}},
        "onSuccessDestroyOriginal": True,
    }
    response = alice.request(
        [
            ["Note/copy", copy, "cp"],
            ["Core/echo", {"#v": ref("cp", "Note/copy", "/created/c/id")}, "e1"],
            ["Core/echo", {"#v": ref("cp", "Note/set", "/destroyed")}, "e2"],
        ]
    )["methodResponses"]
    assert [r[0] for r in response] == ["Note/copy", "Note/set", "Core/echo", "error"]
    assert response[1][1]["destroyed"] == [original]
    assert response[2] == ["Core/echo", {"v": response[0][1]["created"]["c"]["id"]}, "e1"]
    assert response[3][1]["type"] == "invalidResultReference"
    alice.ok("Note/set", {"accountId": ids["alice"], "destroy": [response[2][1]["v"]]})


def test_several_references_in_one_call(alice: Client) -> None:
    """§3.7: every `#` argument of a call is resolved before the call runs."""
    response = alice.request(
        [
            ["Core/echo", {"a": [1], "b": {"c": "d"}}, "s"],
            [
                "Core/echo",
                {
                    "#x": ref("s", "Core/echo", "/a"),
                    "#y": ref("s", "Core/echo", "/b/c"),
                    "z": 3,
                },
                "r",
            ],
        ]
    )["methodResponses"]
    assert response[1] == ["Core/echo", {"x": [1], "y": "d", "z": 3}, "r"]


# Creation ids: §3.3 createdIds, §3.4, §5.3


def test_creation_id_in_a_later_call(alice: Client, ids: dict[str, str]) -> None:
    """§5.3: a property holding an id may be set to "#" + the creation id of a record
    created in the same or an earlier call; creation ids span types."""
    account, title = ids["alice"], marker("later")
    response = alice.request(
        [
            ["Folder/set", {"accountId": account, "create": {"f1": {"name": title}}}, "0"],
            [
                "Note/set",
                {"accountId": account, "create": {"n1": {"title": title, "folderId": "#f1"}}},
                "1",
            ],
            ["Note/set", {"accountId": account, "update": {"#n1": {"body": "#f1"}}}, "2"],
        ]
    )["methodResponses"]
    folder = response[0][1]["created"]["f1"]["id"]
    note = response[1][1]["created"]["n1"]
    assert response[1][1]["notCreated"] is None
    assert "folderId" not in note  # it was sent by the client (§5.3 created)
    assert response[2][1]["updated"] == {note["id"]: {"size": 3}}  # size follows body
    got = alice.ok("Note/get", {"accountId": account, "ids": [note["id"]]})["list"]
    # A plain String property is not an Id: "#f1" stays as it is.
    assert got[0]["folderId"] == folder
    assert got[0]["body"] == "#f1"


def test_creation_id_in_an_update_patch(alice: Client, ids: dict[str, str]) -> None:
    """§3.3: "If it comes across a reference to a creation id in a create/update, it looks
    it up in the map and replaces the reference with the real id"."""
    account, title = ids["alice"], marker("patch")
    note = alice.ok("Note/set", {"accountId": account, "create": {"n": {"title": title}}})
    note_id = note["created"]["n"]["id"]
    response = alice.request(
        [
            ["Folder/set", {"accountId": account, "create": {"f": {"name": title}}}, "0"],
            ["Note/set", {"accountId": account, "update": {note_id: {"folderId": "#f"}}}, "1"],
            ["Folder/set", {"accountId": account, "update": {"#f": {"noteIds": [note_id]}}}, "2"],
        ]
    )["methodResponses"]
    folder = response[0][1]["created"]["f"]["id"]
    assert response[1][1]["updated"] == {note_id: None}
    assert response[2][1]["updated"] == {folder: None}
    got = alice.ok("Note/get", {"accountId": account, "ids": [note_id]})["list"][0]
    assert got["folderId"] == folder


def test_creation_ids_as_update_and_destroy_keys(alice: Client, ids: dict[str, str]) -> None:
    """§5.3 (errata): "A record may be updated/destroyed in the same request as it is
    created. The update/destroy arguments may use creation ids as keys by prefixing the
    creation id with a #." In the same call too: creates come first."""
    account, title = ids["alice"], marker("keys")
    response = alice.request(
        [
            [
                "Note/set",
                {
                    "accountId": account,
                    "create": {"a": {"title": title}, "b": {"title": title}},
                },
                "0",
            ],
            [
                "Note/set",
                {
                    "accountId": account,
                    "create": {"c": {"title": title}, "d": {"title": title}},
                    "update": {"#a": {"priority": 7}, "#c": {"priority": 8}},
                    "destroy": ["#b", "#d"],
                },
                "1",
            ],
        ]
    )["methodResponses"]
    first, second = response[0][1], response[1][1]
    made = {cid: c["id"] for cid, c in {**first["created"], **second["created"]}.items()}
    assert second["updated"] == {made["a"]: None, made["c"]: None}
    assert sorted(second["destroyed"]) == sorted([made["b"], made["d"]])
    assert second["notUpdated"] is None
    assert second["notDestroyed"] is None
    got = alice.ok("Note/get", {"accountId": account, "ids": list(made.values())})
    assert sorted(got["notFound"]) == sorted([made["b"], made["d"]])
    assert {n["id"]: n["priority"] for n in got["list"]} == {made["a"]: 7, made["c"]: 8}
    alice.ok("Note/set", {"accountId": account, "destroy": [made["a"], made["c"]]})


def test_created_ids_passed_in_are_used_and_returned(alice: Client, ids: dict[str, str]) -> None:
    """§3.3: the client may pass an initial createdIds map; §3.4: the response's createdIds
    "MUST include all creation ids passed in ... as well as any additional ones"."""
    account, title = ids["alice"], marker("passed")
    folder = alice.ok("Folder/set", {"accountId": account, "create": {"x": {"name": title}}})
    folder_id = folder["created"]["x"]["id"]
    passed = {"pre": folder_id, "other": "someIdOfAnotherServer"}
    response = alice.request(
        [
            [
                "Note/set",
                {"accountId": account, "create": {"n1": {"title": title, "folderId": "#pre"}}},
                "0",
            ]
        ],
        created_ids=passed,
    )
    created = response["methodResponses"][0][1]["created"]
    note_id = created["n1"]["id"]
    assert response["createdIds"] == {**passed, "n1": note_id}
    got = alice.ok("Note/get", {"accountId": account, "ids": [note_id]})["list"]
    assert got[0]["folderId"] == folder_id


def test_created_ids_given_empty_or_unused(alice: Client, ids: dict[str, str]) -> None:
    """§3.3: createdIds "may be an empty object"; given, it is returned even when nothing was
    created."""
    response = alice.request([["Core/echo", {}, "0"]], created_ids={})
    assert response["createdIds"] == {}
    response = alice.request([["Core/echo", {}, "0"]], created_ids={"k": "v1"})
    assert response["createdIds"] == {"k": "v1"}
    title = marker("empty")
    response = alice.request(
        [["Note/set", {"accountId": ids["alice"], "create": {"n": {"title": title}}}, "0"]],
        created_ids={},
    )
    assert response["createdIds"] == {"n": response["methodResponses"][0][1]["created"]["n"]["id"]}


def test_no_created_ids_unless_given(alice: Client, ids: dict[str, str]) -> None:
    """§3.4: createdIds is "only returned if given in the request"."""
    title = marker("none")
    response = alice.request(
        [["Note/set", {"accountId": ids["alice"], "create": {"n": {"title": title}}}, "0"]]
    )
    assert response["methodResponses"][0][1]["created"]["n"]["id"]
    assert set(response) == {"methodResponses", "sessionState"}


def test_reused_creation_id_maps_to_the_latest(alice: Client, ids: dict[str, str]) -> None:
    """§5.3: "If a creation id is reused, the server MUST map the creation id to the most
    recently created item with that id." """
    account, title = ids["alice"], marker("reuse")
    response = alice.request(
        [
            ["Folder/set", {"accountId": account, "create": {"x": {"name": title + " 1"}}}, "0"],
            ["Folder/set", {"accountId": account, "create": {"x": {"name": title + " 2"}}}, "1"],
            [
                "Note/set",
                {"accountId": account, "create": {"n": {"title": title, "folderId": "#x"}}},
                "2",
            ],
        ],
        created_ids={"x": "passedIn"},
    )
    calls = response["methodResponses"]
    second = calls[1][1]["created"]["x"]["id"]
    assert calls[0][1]["created"]["x"]["id"] != second
    note = calls[2][1]["created"]["n"]["id"]
    assert response["createdIds"] == {"x": second, "n": note}
    got = alice.ok("Note/get", {"accountId": account, "ids": [note]})["list"]
    assert got[0]["folderId"] == second


def test_unknown_creation_id_is_invalid_properties(alice: Client, ids: dict[str, str]) -> None:
    """§5.3: a reference to a creation id not in the map (never made, or whose create failed)
    cannot be an Id: the create or update fails with invalidProperties for that property."""
    account, title = ids["alice"], marker("unknown")
    response = alice.request(
        [
            [
                "Note/set",
                {
                    "accountId": account,
                    "create": {
                        "bad": {"title": 5},
                        "n1": {"title": title, "folderId": "#nope"},
                        "n2": {"title": title, "folderId": "#bad"},
                        "n3": {"title": title},
                    },
                },
                "0",
            ],
            [
                "Note/set",
                {"accountId": account, "update": {"#n3": {"folderId": "#nope"}}},
                "1",
            ],
        ]
    )["methodResponses"]
    first, second = response[0][1], response[1][1]
    assert sorted(first["created"]) == ["n3"]
    assert sorted(first["notCreated"]) == ["bad", "n1", "n2"]
    assert first["notCreated"]["bad"]["type"] == "invalidProperties"
    assert first["notCreated"]["bad"]["properties"] == ["title"]
    for cid in ("n1", "n2"):
        assert first["notCreated"][cid]["type"] == "invalidProperties"
        assert first["notCreated"][cid]["properties"] == ["folderId"]
    n3 = first["created"]["n3"]["id"]
    assert second["updated"] is None
    assert second["notUpdated"][n3]["type"] == "invalidProperties"
    assert second["notUpdated"][n3]["properties"] == ["folderId"]
