"""RFC 8620 §5.5: Foo/query, on the Note test type (filters title, folderId, minPriority,
hasTag; sorts title, priority, size). Each test scopes its notes by a tag of its own."""

from __future__ import annotations

from typing import Any

from tests.conformance.notes import create, error, query, query_ids, state, unique
from tests.conftest import Client


def notes(client: Client, account: str, tag: str, *specs: dict[str, Any]) -> dict[str, str]:
    """Create tagged notes; return title → id (titles are unique within a test)."""
    made = create(
        client,
        account,
        {
            f"n{i}": {**spec, "tags": {tag: True, **spec.get("tags", {})}}
            for i, spec in enumerate(specs)
        },
    )
    return {spec["title"]: made[f"n{i}"] for i, spec in enumerate(specs)}


def scoped(tag: str, condition: Any = None) -> dict[str, Any]:
    if condition is None:
        return {"hasTag": tag}
    return {"operator": "AND", "conditions": [{"hasTag": tag}, condition]}


def titles(by_title: dict[str, str], ids: list[str]) -> list[str]:
    names = {id: title for title, id in by_title.items()}
    return [names[id] for id in ids]


def sorted_titles(
    client: Client, account: str, tag: str, by_title: dict[str, str], *comparators: Any
) -> list[str]:
    ids = query_ids(client, account, filter=scoped(tag), sort=list(comparators))
    return titles(by_title, ids)


# -- filters ---------------------------------------------------------------------------------


def test_filter_conditions_and_operators(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    made = notes(
        alice,
        account,
        tag,
        {"title": "Apple pie", "priority": 1},
        {"title": "apple tart", "priority": 8, "tags": {"red": True}},
        {"title": "Banana", "priority": 5, "tags": {"red": True}},
        {"title": "cherry", "priority": 9},
        {"title": "date", "priority": 0, "tags": {"red": False}},
    )
    everything = sorted(made)

    def run(condition: Any) -> list[str]:
        return sorted(titles(made, query_ids(alice, account, filter=scoped(tag, condition))))

    assert run(None) == everything
    assert run({"title": "APPLE"}) == ["Apple pie", "apple tart"]
    assert run({"minPriority": 5}) == ["Banana", "apple tart", "cherry"]
    assert run({"hasTag": "red"}) == ["Banana", "apple tart"]
    # Several properties in one FilterCondition must all match.
    assert run({"title": "apple", "minPriority": 5}) == ["apple tart"]
    assert run({"operator": "OR", "conditions": [{"title": "apple"}, {"minPriority": 9}]}) == [
        "Apple pie",
        "apple tart",
        "cherry",
    ]
    # NOT: none of the conditions may match.
    assert run({"operator": "NOT", "conditions": [{"title": "apple"}, {"hasTag": "red"}]}) == [
        "cherry",
        "date",
    ]
    nested = {
        "operator": "OR",
        "conditions": [
            {
                "operator": "AND",
                "conditions": [
                    {"minPriority": 5},
                    {"operator": "NOT", "conditions": [{"hasTag": "red"}]},
                ],
            },
            {
                "operator": "NOT",
                "conditions": [
                    {"operator": "OR", "conditions": [{"minPriority": 1}, {"title": "e"}]}
                ],
            },
        ],
    }
    assert run(nested) == ["cherry"]
    # Empty operators: AND of nothing matches all, OR of nothing none, NOT of nothing all.
    assert run({"operator": "AND", "conditions": []}) == everything
    assert run({"operator": "OR", "conditions": []}) == []
    assert run({"operator": "NOT", "conditions": []}) == everything


def test_filter_by_null_and_by_id(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    folder = alice.ok("Folder/set", {"accountId": account, "create": {"f": {"name": tag}}})
    folder_id = folder["created"]["f"]["id"]
    made = notes(alice, account, tag, {"title": "filed", "folderId": folder_id}, {"title": "loose"})
    assert query_ids(alice, account, filter=scoped(tag, {"folderId": folder_id})) == [made["filed"]]
    assert query_ids(alice, account, filter=scoped(tag, {"folderId": None})) == [made["loose"]]
    assert query_ids(alice, account, filter={"folderId": folder_id}) == [made["filed"]]


def test_filter_errors(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    notes(alice, account, tag, {"title": "x"})
    for filter, type in (
        ({"colour": "red"}, "unsupportedFilter"),
        (scoped(tag, {"colour": "red"}), "unsupportedFilter"),
        ({"operator": "XOR", "conditions": [{"hasTag": tag}]}, "invalidArguments"),
        ({"operator": "AND"}, "invalidArguments"),
        ({"operator": "AND", "conditions": {"hasTag": tag}}, "invalidArguments"),
        ({"operator": "AND", "conditions": [5]}, "invalidArguments"),
        ({"minPriority": "high"}, "invalidArguments"),
        ("hasTag", "invalidArguments"),
    ):
        out = error(alice, "Note/query", {"accountId": account, "filter": filter})
        assert out["type"] == type, (filter, out)


# -- sort ------------------------------------------------------------------------------------


def test_collations(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    made = notes(alice, account, tag, *({"title": t} for t in ("émile", "Zoe", "adam")))

    def by(collation: str) -> list[str]:
        comparator = {"property": "title", "collation": collation}
        return sorted_titles(alice, account, tag, made, comparator)

    # RFC 4790 §9.2: octets, with a-z mapped to A-Z: "é" (0xC3 0xA9) sorts after every letter.
    assert by("i;ascii-casemap") == ["adam", "Zoe", "émile"]
    # RFC 5051: titlecased and decomposed, "é" sorts with "E".
    assert by("i;unicode-casemap") == ["adam", "émile", "Zoe"]


def test_casemap_collations_compare_upper_case(alice: Client, ids: dict[str, str]) -> None:
    # Both casemaps map letters to upper (title) case before comparing code points, so "_"
    # (0x5F) sorts after "Z" (0x5A), not before "z" (0x7A).
    account = ids["alice"]
    tag = unique("query")
    made = notes(alice, account, tag, *({"title": t} for t in ("a_", "ab", "aZ", "A[")))
    for collation in ("i;ascii-casemap", "i;unicode-casemap"):
        comparator = {"property": "title", "collation": collation}
        assert sorted_titles(alice, account, tag, made, comparator) == ["ab", "aZ", "A[", "a_"]


def test_ascii_numeric_collation(alice: Client, ids: dict[str, str]) -> None:
    # RFC 4790 §9.1: the leading digits as a number; no leading digit is positive infinity.
    account = ids["alice"]
    tag = unique("query")
    made = notes(alice, account, tag, *({"title": t} for t in ("10", "9", "100abc", "x1", "007")))
    comparator = {"property": "title", "collation": "i;ascii-numeric"}
    assert sorted_titles(alice, account, tag, made, comparator) == [
        "007",
        "9",
        "10",
        "100abc",
        "x1",
    ]
    descending = {**comparator, "isAscending": False}
    assert sorted_titles(alice, account, tag, made, descending) == [
        "x1",
        "100abc",
        "10",
        "9",
        "007",
    ]


def test_sort_direction_and_several_keys(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    made = notes(
        alice,
        account,
        tag,
        {"title": "b", "priority": 2, "body": "xxx"},
        {"title": "a", "priority": 2, "body": "x"},
        {"title": "c", "priority": 1, "body": "xx"},
        {"title": "d", "priority": 3, "body": ""},
    )
    priority = {"property": "priority"}
    title = {"property": "title"}
    assert sorted_titles(alice, account, tag, made, priority, title) == ["c", "a", "b", "d"]
    down = {"property": "priority", "isAscending": False}
    assert sorted_titles(alice, account, tag, made, down, title) == ["d", "a", "b", "c"]
    title_down = {"property": "title", "isAscending": False}
    assert sorted_titles(alice, account, tag, made, down, title_down) == ["d", "b", "a", "c"]
    assert sorted_titles(alice, account, tag, made, {"property": "size"}) == ["d", "a", "c", "b"]
    assert sorted_titles(alice, account, tag, made, title_down) == ["d", "c", "b", "a"]
    # Without a sort the order is the server's, but stable between calls.
    unsorted = query_ids(alice, account, filter=scoped(tag))
    assert sorted(unsorted) == sorted(made.values())
    assert query_ids(alice, account, filter=scoped(tag), sort=[]) == unsorted
    assert query_ids(alice, account, filter=scoped(tag), sort=None) == unsorted


def test_sort_errors(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    for sort, type in (
        ([{"property": "body"}], "unsupportedSort"),  # a property without a sort
        ([{"property": "colour"}], "unsupportedSort"),
        ([{"property": "title", "collation": "i;klingon"}], "unsupportedSort"),
        ([{"property": "title"}, {"property": "colour"}], "unsupportedSort"),
        ([{"property": "title", "isAscending": "yes"}], "invalidArguments"),
        ([{"isAscending": True}], "invalidArguments"),
        ({"property": "title"}, "invalidArguments"),
        # A collation given as a list (once a serverFail).
        ([{"property": "title", "collation": ["i;ascii-casemap"]}], "invalidArguments"),
        ([{"property": "title", "collation": {"x": 1}}], "invalidArguments"),
    ):
        out = error(alice, "Note/query", {"accountId": account, "sort": sort})
        assert out["type"] == type, (sort, out)


def test_comparator_properties_beyond_the_rfc_are_ignored(
    alice: Client, ids: dict[str, str]
) -> None:
    """Ruling (issue 9): a widely used Python client sends three more properties in every
    Comparator; they are ignored, and the sort is made."""
    account = ids["alice"]
    tag = unique("query")
    made = notes(alice, account, tag, *({"title": t} for t in "bca"))
    comparator = {
        "property": "title",
        "isAscending": False,
        "collation": "i;ascii-casemap",
        "anchor": None,
        "keyword": None,
        "position": 0,
    }
    got = query_ids(alice, account, filter=scoped(tag), sort=[comparator])
    assert got == [made["c"], made["b"], made["a"]]


# -- windows ---------------------------------------------------------------------------------


def window(client: Client, account: str, tag: str, **args: Any) -> dict[str, Any]:
    return query(client, account, filter=scoped(tag), sort=[{"property": "title"}], **args)


def test_position_and_limit(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    made = notes(alice, account, tag, *({"title": t} for t in "abcde"))
    n = [made[t] for t in "abcde"]

    def ids_at(**args: Any) -> tuple[list[str], int]:
        out = window(alice, account, tag, **args)
        return out["ids"], out["position"]

    assert ids_at() == (n, 0)
    assert ids_at(position=0, limit=2) == (n[:2], 0)
    assert ids_at(position=2) == (n[2:], 2)
    assert ids_at(position=2, limit=2) == (n[2:4], 2)
    assert ids_at(position=4, limit=10) == (n[4:], 4)
    assert ids_at(limit=0)[0] == []
    # A negative position is an offset from the end, clamped to 0.
    assert ids_at(position=-2) == (n[3:], 3)
    assert ids_at(position=-5) == (n, 0)
    assert ids_at(position=-50, limit=1) == (n[:1], 0)
    # At or past the end: no ids, and no error.
    assert ids_at(position=5)[0] == []
    assert ids_at(position=500)[0] == []
    # anchorOffset without an anchor is ignored.
    assert ids_at(position=1, anchorOffset=3) == (n[1:], 1)


def test_anchor(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    made = notes(alice, account, tag, *({"title": t} for t in "abcde"))
    n = [made[t] for t in "abcde"]

    def ids_at(**args: Any) -> tuple[list[str], int]:
        out = window(alice, account, tag, **args)
        return out["ids"], out["position"]

    assert ids_at(anchor=n[2]) == (n[2:], 2)
    assert ids_at(anchor=n[2], anchorOffset=1, limit=2) == (n[3:5], 3)
    assert ids_at(anchor=n[2], anchorOffset=-1, limit=2) == (n[1:3], 1)
    assert ids_at(anchor=n[1], anchorOffset=-3) == (n, 0)  # clamped to 0
    assert ids_at(anchor=n[4], anchorOffset=1)[0] == []
    # With an anchor, position is ignored.
    assert ids_at(anchor=n[3], position=0, limit=1) == (n[3:4], 3)
    assert ids_at(anchor=n[3], position=-1, anchorOffset=-1) == (n[2:], 2)


def test_anchor_not_found(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    notes(alice, account, tag, {"title": "in"})
    outside = notes(alice, account, unique("query"), {"title": "out"})["out"]
    for anchor in (outside, "nosuchnote"):
        args = {"accountId": account, "filter": scoped(tag), "anchor": anchor}
        assert error(alice, "Note/query", args)["type"] == "anchorNotFound"


def test_invalid_window_arguments(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    for args in ({"limit": -1}, {"limit": 1.5}, {"position": "1"}, {"anchorOffset": None}):
        out = error(alice, "Note/query", {"accountId": account, **args})
        assert out["type"] == "invalidArguments", (args, out)


def test_total_only_when_asked(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    notes(alice, account, tag, *({"title": t} for t in "abc"))
    assert "total" not in window(alice, account, tag)
    assert "total" not in window(alice, account, tag, calculateTotal=False)
    assert window(alice, account, tag, calculateTotal=True)["total"] == 3
    out = window(alice, account, tag, calculateTotal=True, position=1, limit=1)
    assert (out["total"], len(out["ids"])) == (3, 1)
    assert window(alice, account, tag, calculateTotal=True, position=7)["total"] == 3


def test_response_shape_and_query_state(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    made = notes(alice, account, tag, {"title": "a"})
    out = window(alice, account, tag, limit=5)
    assert out == {
        "accountId": account,
        "queryState": state(alice, account),
        "canCalculateChanges": out["canCalculateChanges"],
        "position": 0,
        "ids": [made["a"]],
    }
    assert isinstance(out["canCalculateChanges"], bool)
    # A limit the server did not change is not returned.
    assert "limit" not in out
    # The results changed, so the queryState must.
    notes(alice, account, tag, {"title": "b"})
    again = window(alice, account, tag)
    assert again["queryState"] != out["queryState"]
    assert again["queryState"] == state(alice, account)


def test_a_limit_the_server_lowers_is_returned(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("query")
    made = notes(alice, account, tag, *({"title": t} for t in "ab"))
    huge = 2**53 - 1
    out = window(alice, account, tag, limit=huge)
    assert out["ids"] == [made["a"], made["b"]]
    # The server MAY enforce a maximum limit; if it lowered the limit it must say so.
    if "limit" in out:
        assert 2 <= out["limit"] < huge
