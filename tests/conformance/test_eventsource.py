"""RFC 8620 §7.3: the event source, pushing StateChange objects (§7.1)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Client, Server


def eventsource_url(client: Client, types: str, closeafter: str, ping: str) -> str:
    url = client.session()["eventSourceUrl"]
    for var, value in {"types": types, "closeafter": closeafter, "ping": ping}.items():
        url = url.replace("{" + var + "}", value)
    return url


class Events:
    """A connected event source: read one server-sent event at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.last_id: str | None = None

    def next(self) -> tuple[str, Any]:
        """The next event as (name, data); comments come as ("comment", text). The last id
        seen is kept in `last_id`."""
        fields: dict[str, str] = {}
        comment = None
        for line in self.lines:
            if line == "":
                if fields:
                    if "id" in fields:
                        self.last_id = fields["id"]
                    return fields.get("event", "message"), orjson.loads(fields["data"])
                if comment is not None:
                    return "comment", comment
                continue
            if line.startswith(":"):
                comment = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")

    def ended(self) -> bool:
        """True when the server closed the stream with nothing more in it."""
        return all(line == "" for line in self.lines)


@contextlib.contextmanager
def connect(
    client: Client, types: str = "*", closeafter: str = "state", ping: str = "0",
    last_event_id: str | None = None,
) -> Iterator[Events]:  # fmt: skip
    """Connect and wait for the opening comment, so the server has subscribed us."""
    url = eventsource_url(client, types, closeafter, ping)
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with client.http.stream(
        "GET", url, timeout=httpx.Timeout(10, read=5), headers=headers
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
        events = Events(response)
        assert events.next()[0] == "comment"
        yield events


def create_note(client: Client, account_id: str, title: str = "pushed") -> str:
    result = client.ok("Note/set", {"accountId": account_id, "create": {"n": {"title": title}}})
    assert "n" in result["created"], result
    state: str = result["newState"]
    return state


def create_folder(client: Client, account_id: str) -> str:
    result = client.ok("Folder/set", {"accountId": account_id, "create": {"f": {"name": "F"}}})
    assert "f" in result["created"], result
    state: str = result["newState"]
    return state


def test_a_change_pushes_a_state_event_then_closes(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    other = server.client("alice@example.com")
    with connect(alice) as events:
        state = create_note(other, ids["alice"])
        name, data = events.next()
        assert name == "state"
        assert data == {"@type": "StateChange", "changed": {ids["alice"]: {"Note": state}}}
        assert events.ended()
    assert other.ok("Note/get", {"accountId": ids["alice"], "ids": []})["state"] == state


def test_changes_in_shared_accounts_are_pushed(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    other = server.client("alice@example.com")
    with connect(alice) as events:
        state = create_note(other, ids["bob"])
        assert events.next() == (
            "state",
            {"@type": "StateChange", "changed": {ids["bob"]: {"Note": state}}},
        )


def test_changes_in_accounts_the_user_cannot_see_are_not_pushed(
    server: Server, alice: Client, bob: Client, ids: dict[str, str]
) -> None:
    """Bob listens; a change in alice's account is not his business, one in his own is."""
    with connect(bob) as events:
        create_note(alice, ids["alice"])
        state = create_note(alice, ids["bob"])
        assert events.next() == (
            "state",
            {"@type": "StateChange", "changed": {ids["bob"]: {"Note": state}}},
        )


def test_one_request_changing_two_types_announces_both(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    """Two method calls are two commits: their states arrive in one event or in two (§7.1
    leaves it to the server), and together they name both new states."""
    other = server.client("alice@example.com")
    with connect(alice, closeafter="no") as events:
        response = other.request(
            [
                ["Note/set", {"accountId": ids["alice"], "create": {"n": {"title": "x"}}}, "a"],
                ["Folder/set", {"accountId": ids["alice"], "create": {"f": {"name": "x"}}}, "b"],
            ]
        )["methodResponses"]
        note_state, folder_state = response[0][1]["newState"], response[1][1]["newState"]
        seen: dict[str, str] = {}
        while seen != {"Note": note_state, "Folder": folder_state}:
            name, data = events.next()
            assert name == "state"
            assert data["@type"] == "StateChange"
            assert set(data["changed"]) == {ids["alice"]}
            seen.update(data["changed"][ids["alice"]])


def test_types_filter_pushes_only_those_types(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    other = server.client("alice@example.com")
    with connect(alice, types="Folder") as events:
        create_note(other, ids["alice"])  # filtered out: no event, the stream stays open
        state = create_folder(other, ids["alice"])
        assert events.next() == (
            "state",
            {"@type": "StateChange", "changed": {ids["alice"]: {"Folder": state}}},
        )
        assert events.ended()


def test_types_filter_trims_an_event_to_those_types(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    other = server.client("alice@example.com")
    with connect(alice, types="Folder,Setting") as events:
        response = other.request(
            [
                ["Note/set", {"accountId": ids["alice"], "create": {"n": {"title": "x"}}}, "a"],
                ["Folder/set", {"accountId": ids["alice"], "create": {"f": {"name": "x"}}}, "b"],
            ]
        )["methodResponses"]
        folder_state = response[1][1]["newState"]
        assert events.next() == (
            "state",
            {"@type": "StateChange", "changed": {ids["alice"]: {"Folder": folder_state}}},
        )


def test_closeafter_no_keeps_the_stream_open(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    other = server.client("alice@example.com")
    with connect(alice, closeafter="no") as events:
        first = create_note(other, ids["alice"])
        assert events.next()[1]["changed"] == {ids["alice"]: {"Note": first}}
        second = create_note(other, ids["alice"])
        assert events.next()[1]["changed"] == {ids["alice"]: {"Note": second}}


def test_ping_reports_its_interval(alice: Client) -> None:
    """The server's minimum ping interval is 1 s (the RFC lets it choose, up to 30 s)."""
    with connect(alice, closeafter="no", ping="1") as events:
        started = time.monotonic()
        assert events.next() == ("ping", {"interval": 1})
        assert events.next() == ("ping", {"interval": 1})
        assert 1.5 < time.monotonic() - started < 3


def test_ping_interval_counts_from_the_last_event_sent(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    """A change the types filter drops sends nothing, so it must not delay the next ping."""
    other = server.client("alice@example.com")
    with connect(alice, types="Folder", closeafter="no", ping="1") as events:
        started = time.monotonic()
        time.sleep(0.6)
        create_note(other, ids["alice"])
        assert events.next() == ("ping", {"interval": 1})
        assert time.monotonic() - started < 1.45


def test_bad_parameters_are_400(alice: Client) -> None:
    for closeafter, ping in [("sometimes", "0"), ("state", "soon"), ("state", "-1")]:
        r = alice.http.get(eventsource_url(alice, "*", closeafter, ping))
        assert r.status_code == 400, (closeafter, ping)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 400


def test_eventsource_needs_authentication(server: Server, alice: Client) -> None:
    with httpx.Client() as http:
        r = http.get(eventsource_url(alice, "*", "state", "0"))
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[Client, Client, str]]:
    """Two jmapd processes on one data directory (as several workers or nodes are): a client
    of each for one user, and the user's account id."""
    from tests.conftest import jmapd, start_server, stop_server

    jmapd(tmp_path, "account", "add", "hal@example.com", "--password", "hal-secret")
    (hal_id,) = [line.split()[0] for line in jmapd(tmp_path, "account", "list").splitlines()]
    first = start_server(tmp_path)
    second = start_server(tmp_path)
    try:
        yield (
            first.client_with(("hal@example.com", "hal-secret")),
            second.client_with(("hal@example.com", "hal-secret")),
            hal_id,
        )
    finally:
        stop_server(second)
        stop_server(first)


def test_changes_made_by_another_process_are_pushed(
    two_processes: tuple[Client, Client, str],
) -> None:
    """An event source on one process hears of changes committed through the other, in
    order, up to the newest."""
    listener, writer, hal_id = two_processes
    states = []
    with connect(listener, types="Note", closeafter="no", ping="1") as events:
        for i in range(5):
            result = writer.ok(
                "Note/set", {"accountId": hal_id, "create": {"n": {"title": f"w{i}"}}}
            )
            states.append(result["newState"])
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not seen or seen[-1] != states[-1]):
            name, data = events.next()
            if name == "state":
                seen.append(data["changed"][hal_id]["Note"])
    assert seen[-1] == states[-1]
    assert [int(s) for s in seen] == sorted(int(s) for s in seen)  # never backwards


def test_a_change_in_another_worker_is_pushed_at_once(
    two_processes: tuple[Client, Client, str],
) -> None:
    """Issue 11/13: the workers of one data directory tell each other of their commits (on
    PostgreSQL by NOTIFY, on SQLite by datagrams between them), so a change reaches an event
    source held by another worker in milliseconds, not at the next poll (5 s)."""
    listener, writer, hal_id = two_processes
    latencies = []
    with connect(listener, types="Note", closeafter="no") as events:
        for i in range(5):
            started = time.monotonic()
            result = writer.ok(
                "Note/set", {"accountId": hal_id, "create": {"n": {"title": f"w{i}"}}}
            )
            name, data = events.next()
            latencies.append(time.monotonic() - started)
            assert name == "state"
            assert data["changed"][hal_id]["Note"] == result["newState"]
    assert sorted(latencies)[2] < 1.0, latencies  # the poll would take up to 5 s


def test_a_reconnecting_client_learns_what_it_missed(alice: Client, ids: dict[str, str]) -> None:
    """Issue 13 (RFC 8620 §7.3, the EventSource spec's Last-Event-ID): every state event has
    an id; reconnecting with it, a client is told at once of what moved while it was away,
    and of nothing when nothing did."""
    account = ids["alice"]
    with connect(alice, types="Note", closeafter="no", ping="1") as events:
        state = create_note(alice, account)
        name, data = events.next()
        assert name == "state" and data["changed"][account]["Note"] == state
        last_id = events.last_id
    assert last_id
    # Nothing moved: the reconnected stream has no state event, only its pings.
    with connect(alice, types="Note", closeafter="no", ping="1", last_event_id=last_id) as events:
        assert events.next() == ("ping", {"interval": 1})
    # Something moved while away: told at once, with a new id.
    missed = create_note(alice, account)
    with connect(alice, types="Note", closeafter="no", ping="1", last_event_id=last_id) as events:
        name, data = events.next()
        assert (name, data["changed"][account]["Note"]) == ("state", missed)
        assert events.last_id and events.last_id != last_id
    # A malformed id is as good as none known: every current state is told.
    with connect(
        alice, types="Note", closeafter="no", ping="1", last_event_id="garbage!"
    ) as events:
        name, data = events.next()
        assert (name, data["changed"][account]["Note"]) == ("state", missed)
