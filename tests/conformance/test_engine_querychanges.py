"""RFC 8620 §5.6: Foo/queryChanges, checked the way a client uses it: applying the changes to
the old results must give exactly the new results."""

from __future__ import annotations

import random
from typing import Any

from tests.conformance.notes import create, error, query, set_ok, unique
from tests.conftest import Client

Cache = list[str | None]


def apply_changes(old: Cache, removed: list[str], added: list[dict[str, Any]], total: int) -> Cache:
    """The client's update of a cached (sparse) result list, as §5.6 describes it."""
    ids = list(old)
    missing = False
    for id in removed:
        if id in ids:
            ids.remove(id)  # splice out
        else:
            missing = True
    if missing and None in ids:
        # An id removed from somewhere we did not cache: everything after the first gap may
        # have moved.
        gap = ids.index(None)
        ids = ids[:gap] + [None] * (len(ids) - gap)
    indexes = [item["index"] for item in added]
    assert indexes == sorted(indexes), "added MUST be sorted by index"
    for item in added:
        if item["index"] > len(ids):
            ids.extend([None] * (item["index"] - len(ids)))
        ids.insert(item["index"], item["id"])  # splice in
    return (ids + [None] * total)[:total]  # truncate or extend to the new total


def changes(client: Client, account: str, since: str, **args: Any) -> dict[str, Any]:
    return client.ok("Note/queryChanges", {"accountId": account, "sinceQueryState": since, **args})


def check(client: Client, account: str, old: dict[str, Any], **args: Any) -> dict[str, Any]:
    """queryChanges from an old /query answer (made with the same args) must turn its ids into
    those of a /query now."""
    out = changes(client, account, old["queryState"], calculateTotal=True, **args)
    new = query(client, account, calculateTotal=True, **args)
    assert out["oldQueryState"] == old["queryState"]
    assert out["newQueryState"] == new["queryState"]
    assert out["total"] == new["total"] == len(new["ids"])
    assert apply_changes(old["ids"], out["removed"], out["added"], out["total"]) == new["ids"]
    assert len(set(out["removed"])) == len(out["removed"])
    return out


def by_tag(tag: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    if condition is None:
        return {"hasTag": tag}
    return {"operator": "AND", "conditions": [{"hasTag": tag}, condition]}


def test_apply_changes_helper() -> None:
    # The example of §5.6.
    old: Cache = ["id1", "id2", None, None, "id3", "id4", None, None, None]
    out = apply_changes(old, ["id2", "id31"], [{"id": "id5", "index": 0}], 9)
    assert out == ["id5", "id1", None, None, None, None, None, None, None]
    assert apply_changes(["a", "b", "c"], ["b", "x"], [{"id": "d", "index": 2}], 3) == [
        "a",
        "c",
        "d",
    ]


def test_creates_updates_and_destroys(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("qc")
    made = create(
        alice,
        account,
        {t: {"title": t, "tags": {tag: True}} for t in ("b", "d", "f", "h", "j")},
    )
    outsider = create(alice, account, {"k": {"title": "c"}})["k"]
    args = {"filter": by_tag(tag), "sort": [{"property": "title"}]}
    old = query(alice, account, **args)
    assert old["ids"] == [made[t] for t in "bdfhj"]
    set_ok(
        alice,
        account,
        create={"a": {"title": "a", "tags": {tag: True}}, "g": {"title": "g", "tags": {tag: True}}},
        update={
            made["b"]: {"title": "i"},  # moves
            made["d"]: {"tags": {}},  # leaves the results
            outsider: {"tags": {tag: True}},  # joins them
            made["h"]: {"body": "no move"},  # changed, same place
        },
        destroy=[made["j"]],
    )
    out = check(alice, account, old, **args)
    assert out["accountId"] == account
    added = {item["id"] for item in out["added"]}
    assert made["d"] in out["removed"] and made["j"] in out["removed"]
    assert made["d"] not in added and made["j"] not in added
    assert {made["b"], outsider} <= added
    # Created after the old state and destroyed again: nowhere.
    gone = create(alice, account, {"x": {"title": "x", "tags": {tag: True}}})["x"]
    middle = query(alice, account, **args)
    set_ok(alice, account, destroy=[gone])
    out = check(alice, account, old, **args)
    assert gone not in out["removed"] and gone not in {item["id"] for item in out["added"]}
    out = check(alice, account, middle, **args)
    assert out["removed"] == [gone] and out["added"] == []


def test_no_changes(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("qc")
    create(alice, account, {"a": {"title": "a", "tags": {tag: True}}})
    old = query(alice, account, filter=by_tag(tag))
    out = changes(alice, account, old["queryState"], filter=by_tag(tag))
    assert out == {
        "accountId": account,
        "oldQueryState": old["queryState"],
        "newQueryState": old["queryState"],
        "removed": [],
        "added": [],
    }


def test_random_changes_under_several_queries(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("qc")
    rng = random.Random(8620)
    queries: list[dict[str, Any]] = [
        {"filter": by_tag(tag), "sort": [{"property": "title"}]},
        {
            "filter": by_tag(tag, {"minPriority": 3}),
            "sort": [{"property": "priority", "isAscending": False}, {"property": "title"}],
        },
        {"filter": by_tag(tag)},  # the server's own order
        {
            "filter": by_tag(
                tag,
                {
                    "operator": "OR",
                    "conditions": [
                        {"hasTag": "red"},
                        {"operator": "NOT", "conditions": [{"title": "a"}]},
                    ],
                },
            ),
            "sort": [{"property": "size", "isAscending": False}],
        },
    ]

    def random_note() -> dict[str, Any]:
        return {
            "title": rng.choice("abcde") + rng.choice("abcde"),
            "priority": rng.randrange(6),
            "body": "x" * rng.randrange(4),
            "tags": {tag: True, "red": rng.random() < 0.3},
        }

    live = list(create(alice, account, {f"s{i}": random_note() for i in range(8)}).values())
    start = [query(alice, account, **q) for q in queries]
    checkpoint = start
    for step in range(30):
        batch: dict[str, Any] = {"create": {}, "update": {}, "destroy": []}
        for _ in range(rng.choice((1, 1, 2, 3))):
            op = rng.choice(("create", "update", "update", "update", "destroy"))
            touched = set(batch["update"]) | set(batch["destroy"])
            free = [id for id in live if id not in touched]
            if op == "create" or not free:
                batch["create"][f"c{step}-{len(batch['create'])}"] = random_note()
            elif op == "update":
                field = rng.choice(("title", "priority", "body", "red", "untag"))
                if field == "red":
                    patch: dict[str, Any] = {"tags/red": rng.random() < 0.5}
                elif field == "untag":
                    patch = {f"tags/{tag}": rng.random() < 0.7}
                else:
                    patch = {field: random_note()[field]}
                batch["update"][rng.choice(free)] = patch
            else:
                victim = rng.choice(free)
                batch["destroy"].append(victim)
        out = set_ok(alice, account, **batch)
        live = [id for id in live if id not in batch["destroy"]]
        live += [created["id"] for created in (out["created"] or {}).values()]
        if step % 5 == 4:
            for q, old_start, old_checkpoint in zip(queries, start, checkpoint, strict=True):
                check(alice, account, old_start, **q)
                check(alice, account, old_checkpoint, **q)
            checkpoint = [query(alice, account, **q) for q in queries]


def test_up_to_id(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("qc")
    made = create(
        alice, account, {t: {"title": t, "tags": {tag: True}} for t in ("b", "d", "f", "h", "j")}
    )
    args = {"filter": by_tag(tag), "sort": [{"property": "title"}]}
    old = query(alice, account, **args)
    # The client has cached only the first three results, up to "f".
    cache: Cache = [*old["ids"][:3], None, None]
    new = create(
        alice,
        account,
        {t: {"title": t, "tags": {tag: True}} for t in ("a", "g", "k")},
    )
    set_ok(alice, account, update={made["h"]: {"title": "i"}}, destroy=[made["d"]])
    now = query(alice, account, **args)
    assert now["ids"] == [new["a"], made["b"], made["f"], new["g"], made["h"], made["j"], new["k"]]
    out = changes(alice, account, old["queryState"], upToId=made["f"], calculateTotal=True, **args)
    # Added ids past upToId's new index are left out (SHOULD).
    assert out["added"] == [{"id": new["a"], "index": 0}]
    assert made["d"] in out["removed"]
    updated = apply_changes(cache, out["removed"], out["added"], out["total"])
    assert updated[:3] == now["ids"][:3]
    assert all(id is None or id == now["ids"][i] for i, id in enumerate(updated))
    # Without upToId everything is there.
    check(alice, account, old, **args)
    # An upToId that is not in the new results limits nothing.
    out = changes(alice, account, old["queryState"], upToId=made["d"], **args)
    assert [item["id"] for item in out["added"]] == [new["a"], new["g"], made["h"], new["k"]]


def test_max_changes(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("qc")
    made = create(alice, account, {t: {"title": t, "tags": {tag: True}} for t in "abc"})
    args = {"filter": by_tag(tag), "sort": [{"property": "title"}]}
    old = query(alice, account, **args)
    set_ok(
        alice,
        account,
        create={"d": {"title": "d", "tags": {tag: True}}},
        update={made["a"]: {"title": "e"}},
        destroy=[made["b"]],
    )
    full = changes(alice, account, old["queryState"], **args)
    count = len(full["removed"]) + len(full["added"])
    assert count >= 4  # a and b removed; d and a added
    assert changes(alice, account, old["queryState"], maxChanges=count, **args) == full
    out = error(
        alice,
        "Note/queryChanges",
        {"accountId": account, "sinceQueryState": old["queryState"], "maxChanges": count - 1}
        | args,
    )
    assert out["type"] == "tooManyChanges"


def test_unknown_state_cannot_be_calculated(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("qc")
    create(alice, account, {"a": {"title": "a", "tags": {tag: True}}})
    current = query(alice, account, filter=by_tag(tag))["queryState"]
    # jmapd's states are decimal counters: a larger one is a state the server never gave.
    for since in ("not-a-state", "", str(int(current) + 1_000_000)):
        args = {"accountId": account, "sinceQueryState": since, "filter": by_tag(tag)}
        assert error(alice, "Note/queryChanges", args)["type"] == "cannotCalculateChanges"


def test_total_only_when_asked(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    tag = unique("qc")
    old = query(alice, account, filter=by_tag(tag))
    create(alice, account, {t: {"title": t, "tags": {tag: True}} for t in "ab"})
    assert "total" not in changes(alice, account, old["queryState"], filter=by_tag(tag))
    out = changes(alice, account, old["queryState"], filter=by_tag(tag), calculateTotal=True)
    assert out["total"] == 2
    assert (
        apply_changes(old["ids"], out["removed"], out["added"], out["total"])
        == query(alice, account, filter=by_tag(tag))["ids"]
    )


def test_invalid_arguments(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    since = query(alice, account, filter={"hasTag": unique("qc")})["queryState"]
    for args, type in (
        ({}, "invalidArguments"),  # sinceQueryState is required
        ({"sinceQueryState": since, "maxChanges": -1}, "invalidArguments"),
        ({"sinceQueryState": since, "filter": {"colour": "red"}}, "unsupportedFilter"),
        ({"sinceQueryState": since, "sort": [{"property": "body"}]}, "unsupportedSort"),
    ):
        out = error(alice, "Note/queryChanges", {"accountId": account, **args})
        assert out["type"] == type, (args, out)
