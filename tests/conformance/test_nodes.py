"""Several jmapd nodes on one database (on PostgreSQL the deployment for more than one machine;
on SQLite, processes sharing a data directory): changes made through one node are seen through
the others, pushed to their subscribers, and concurrent writes from all of them lose nothing."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conformance.test_eventsource import connect
from tests.conftest import Client, Server, database_env, jmapd, start_server, stop_server

NODES = 3
UPDATES = 1000


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[list[Server], str]]:
    """Three nodes on one database. On PostgreSQL each has a data directory of its own (the
    blobs are in the database: nodes share nothing but it); on SQLite they share the data
    directory, which holds the database."""
    jmapd(tmp_path, "account", "add", "ivy@example.com", "--password", "ivy-secret")
    (ivy_id,) = [line.split()[0] for line in jmapd(tmp_path, "account", "list").splitlines()]
    env = {"JMAPD_MAX_CONCURRENT_REQUESTS": "64", **database_env(tmp_path)}
    places = [tmp_path] * NODES
    if env.get("JMAPD_DATABASE"):
        places = [tmp_path / f"node{i}" for i in range(NODES)]
        for place in places:
            place.mkdir()
    servers = [start_server(place, env=env) for place in places]
    try:
        yield servers, ivy_id
    finally:
        for server in servers:
            stop_server(server)


def client(server: Server) -> Client:
    return server.client_with(("ivy@example.com", "ivy-secret"))


def test_a_change_through_one_node_is_seen_and_pushed_through_the_others(
    nodes: tuple[list[Server], str],
) -> None:
    (a, b, c), ivy_id = nodes
    state = client(b).ok("Note/get", {"accountId": ivy_id, "ids": []})["state"]
    with connect(client(c), types="Note") as events:
        created = client(a).ok(
            "Note/set", {"accountId": ivy_id, "create": {"n": {"title": "from A"}}}
        )
        note_id = created["created"]["n"]["id"]
        assert events.next() == (
            "state",
            {"@type": "StateChange", "changed": {ivy_id: {"Note": created["newState"]}}},
        )
    changes = client(b).ok("Note/changes", {"accountId": ivy_id, "sinceState": state})
    assert changes["created"] == [note_id]
    assert changes["newState"] == created["newState"]


def test_concurrent_updates_from_every_node_lose_nothing(
    nodes: tuple[list[Server], str],
) -> None:
    servers, ivy_id = nodes
    clients = [client(s) for s in servers]
    create = {f"n{i}": {"title": f"note {i}"} for i in range(10)}
    created = clients[0].ok("Note/set", {"accountId": ivy_id, "create": create})
    note_ids = [created["created"][f"n{i}"]["id"] for i in range(10)]
    start = int(created["newState"])
    rng = random.Random(8620)
    work = [(rng.choice(clients), rng.choice(note_ids), f"k{n}") for n in range(UPDATES)]

    def update(item: tuple[Client, str, str]) -> str:
        writer, note_id, keyword = item
        result = writer.ok(
            "Note/set", {"accountId": ivy_id, "update": {note_id: {f"tags/{keyword}": True}}}
        )
        assert result["updated"] == {note_id: None}, result
        return str(result["newState"])

    with ThreadPoolExecutor(max_workers=24) as pool:
        states = list(pool.map(update, work))
    # Every update was its own transaction with its own modseq: none lost, none merged.
    assert sorted(int(s) for s in states) == list(range(start + 1, start + UPDATES + 1))
    notes = clients[1].ok("Note/get", {"accountId": ivy_id, "ids": note_ids})["list"]
    expected = {note_id: set() for note_id in note_ids}
    for _, note_id, keyword in work:
        expected[note_id].add(keyword)
    assert {n["id"]: set(n["tags"]) for n in notes} == expected
    assert sum(len(n["tags"]) for n in notes) == UPDATES
    changes = clients[2].ok("Note/changes", {"accountId": ivy_id, "sinceState": str(start)})
    assert sorted(changes["updated"]) == sorted(set(note_ids))
    assert changes["newState"] == str(start + UPDATES)


def test_a_blob_uploaded_through_one_node_downloads_through_another(
    nodes: tuple[list[Server], str],
) -> None:
    """Issue 11: several nodes need no shared directory for blobs (on PostgreSQL they are in
    the database); an upload through one node is downloaded, and imported, through another."""
    (a, b, c), ivy_id = nodes
    raw = b"From: a@example.com\r\nSubject: shared\r\n\r\nstored once, read anywhere\r\n"
    url = client(a).session()["uploadUrl"].replace("{accountId}", ivy_id)
    blob_id = client(a).http.post(url, content=raw).json()["blobId"]
    link = client(b).session()["downloadUrl"]
    for var, value in {"accountId": ivy_id, "blobId": blob_id, "name": "m", "type": "x/y"}.items():
        link = link.replace("{" + var + "}", value)
    assert client(b).http.get(link).content == raw
    inbox = next(m["id"] for m in client(c).ok("Mailbox/get", {"accountId": ivy_id, "ids": None})[
        "list"] if m["role"] == "inbox")  # fmt: skip
    imported = client(c).ok("Email/import", {"accountId": ivy_id, "emails": {
        "e": {"blobId": blob_id, "mailboxIds": {inbox: True}}}})  # fmt: skip
    assert imported["notCreated"] is None
