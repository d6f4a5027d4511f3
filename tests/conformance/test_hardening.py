"""Issue 10: deleted mail is gone, files are private, /changes answers any history it kept,
and push survives a lost connection. Over real HTTP (and the files the server writes), on
both backends."""

from __future__ import annotations

import os
import stat
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.test_email import import_, message, upload
from tests.conformance.test_eventsource import connect
from tests.conformance.test_interop import database_rows
from tests.conftest import DATABASES, Client, Server, jmapd, start_server, stop_server

PASSWORD = "hardening-secret"


def blob_file(data: Path, blob_id: str) -> Path:
    digest = blob_id[1:]
    return data / "blobs" / digest[:2] / digest


def stored(server: Server, blob_id: str) -> bool:
    """Whether the blob's bytes are stored: a file on SQLite, a row of blob_data on
    PostgreSQL (the default blob store of each)."""
    if DATABASES.by_data.get(server.data):
        found = database_rows(server, "SELECT 1 FROM blob_data WHERE blob_id = ?", blob_id)
        return bool(found)
    return blob_file(server.data, blob_id).exists()


def plant(server: Server, blob_id: str, data: bytes, written: float) -> None:
    """Bytes no row references, as a killed write leaves them."""
    if DATABASES.by_data.get(server.data):
        database_rows(server, "INSERT INTO blob_data (blob_id, data, written) VALUES (?, ?, ?) "
                              "RETURNING 1", blob_id, data, written)  # fmt: skip
        return
    path = blob_file(server.data, blob_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (written, written))


def download(client: Client, account_id: str, blob_id: str) -> int:
    url = client.session()["downloadUrl"]
    values = {"accountId": account_id, "blobId": blob_id, "name": "x", "type": "x/y"}
    for var, value in values.items():
        url = url.replace("{" + var + "}", urllib.parse.quote(value, safe=""))
    return client.http.get(url).status_code


@pytest.fixture
def keeper(tmp_path: Path) -> Iterator[Server]:
    """A server whose housekeeping runs every second and keeps no unreferenced blob file,
    with two users: uma, and val who may read uma's account."""
    for name in ("uma", "val"):
        jmapd(tmp_path, "account", "add", f"{name}@example.com", "--password", PASSWORD)
    jmapd(tmp_path, "account", "grant", "uma@example.com", "val@example.com", "--read-only")
    env = {
        "JMAPD_HOUSEKEEPING_INTERVAL": "1",
        "JMAPD_BLOB_GRACE": "0",
        "JMAPD_BLOB_SWEEP_INTERVAL": "1",
    }
    srv = start_server(tmp_path, env=env)
    for line in jmapd(tmp_path, "account", "list").splitlines():
        account_id, name = line.split(" ", 1)
        srv.accounts[name] = account_id
        srv.passwords[name] = PASSWORD
    yield srv
    stop_server(srv)


def inbox_of(client: Client, account_id: str) -> str:
    mailboxes = client.ok("Mailbox/get", {"accountId": account_id, "ids": None})["list"]
    return str(next(m["id"] for m in mailboxes if m["role"] == "inbox"))


def wait_until(check: Any, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


ATTACHED = (
    b"From: a@example.com\r\nSubject: with a part\r\nMessage-ID: <gone@example.com>\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
    b"Content-Type: text/plain\r\n\r\nsecret words\r\n--b\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"c2VjcmV0IGJ5dGVz\r\n--b--\r\n"
)


def test_a_destroyed_emails_bytes_are_gone(keeper: Server) -> None:
    """Issue 10: a destroyed Email's blob still downloaded (for the owner and a read-only
    grantee). Now it is gone at once for both, its parts too, and its file goes with the next
    housekeeping."""
    uma = keeper.client("uma@example.com")
    val = keeper.client("val@example.com")
    account_id = keeper.accounts["uma@example.com"]
    created = import_(uma, account_id, inbox_of(uma, account_id), ATTACHED)
    email = uma.ok("Email/get", {"accountId": account_id, "ids": [created["id"]],
                                 "properties": ["blobId", "attachments"]})["list"][0]  # fmt: skip
    part = email["attachments"][0]["blobId"]
    for client in (uma, val):
        assert download(client, account_id, created["blobId"]) == 200
        assert download(client, account_id, part) == 200
    assert stored(keeper, created["blobId"])
    result = uma.ok("Email/set", {"accountId": account_id, "destroy": [created["id"]]})
    assert result["destroyed"] == [created["id"]]
    for client in (uma, val):
        assert download(client, account_id, created["blobId"]) == 404
        assert download(client, account_id, part) == 404
    assert wait_until(lambda: not stored(keeper, created["blobId"]))
    # Nor can it be found any other way.
    parsed = uma.ok("Email/parse", {"accountId": account_id, "blobIds": [created["blobId"]]})
    assert parsed["notFound"] == [created["blobId"]]


def test_a_blob_two_emails_use_stays_until_both_are_gone(keeper: Server) -> None:
    uma = keeper.client("uma@example.com")
    account_id = keeper.accounts["uma@example.com"]
    inbox = inbox_of(uma, account_id)
    raw = message("Twice", "<twice@example.com>")
    first = import_(uma, account_id, inbox, raw)
    second = import_(uma, account_id, inbox, raw)
    assert first["blobId"] == second["blobId"]
    uma.ok("Email/set", {"accountId": account_id, "destroy": [first["id"]]})
    assert download(uma, account_id, first["blobId"]) == 200
    time.sleep(2.5)  # housekeeping ran: the file is still used
    assert stored(keeper, first["blobId"])
    uma.ok("Email/set", {"accountId": account_id, "destroy": [second["id"]]})
    assert download(uma, account_id, first["blobId"]) == 404
    assert wait_until(lambda: not stored(keeper, first["blobId"]))


def test_files_no_row_references_are_swept(keeper: Server) -> None:
    """Issue 10: the blob files of failed or killed writes were never collected: a file in
    the blob directory that no row references (and a half-written temporary file) is
    removed by the sweep; a referenced one stays."""
    uma = keeper.client("uma@example.com")
    account_id = keeper.accounts["uma@example.com"]
    kept = upload(uma, account_id, b"an upload, referenced until it expires")
    stray = "B" + "ab" * 32
    old = time.time() - 7200
    plant(keeper, stray, b"written by a transaction that was killed", old)
    temporary = keeper.data / "blobs" / "ab" / ".tmp-killed"
    temporary.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_bytes(b"half")  # only the file store makes these
    os.utime(temporary, (old, old))
    assert stored(keeper, stray)
    assert wait_until(lambda: not stored(keeper, stray))
    assert stored(keeper, kept)
    if not DATABASES.by_data.get(keeper.data):  # the file store's own leftovers
        assert wait_until(lambda: not temporary.exists())
    assert download(uma, account_id, kept) == 200


def test_account_remove_removes_its_files(server: Server) -> None:
    """Issue 10: `jmapd account remove` left message files on disk."""
    keeper = server  # whose housekeeping is far away: the command line removes the files
    jmapd(keeper.data, "account", "add", "wes@example.com", "--password", PASSWORD)
    wes = keeper.client_with(("wes@example.com", PASSWORD))
    account_id = wes.session()["primaryAccounts"]["urn:ietf:params:jmap:mail"]
    created = import_(wes, account_id, inbox_of(wes, account_id), ATTACHED.replace(
        b"<gone@example.com>", b"<wes@example.com>"))  # fmt: skip
    assert stored(keeper, created["blobId"])
    out = jmapd(keeper.data, "account", "remove", "wes@example.com", "--yes")
    assert out == "jmapd: removed account wes@example.com and its data (1 blob files)\n"
    assert not stored(keeper, created["blobId"])
    count = "SELECT count(*) FROM blobs WHERE account_id = ?"
    assert database_rows(keeper, count, account_id) == [(0,)]


def indexed_words(server: Server) -> set[str]:
    """Every word the server's full-text index holds, of every account: the vocabulary of
    SQLite's FTS5 table, the lexemes of PostgreSQL's tsvectors (without their field code)."""
    if DATABASES.by_data.get(server.data):
        rows = database_rows(server, "SELECT word FROM ts_stat('SELECT words FROM emails')")
        return {word.split(":", 1)[1] for (word,) in rows}
    import sqlite3

    with sqlite3.connect(server.data / "jmapd.sqlite3") as db:
        db.execute("CREATE VIRTUAL TABLE temp.vocabulary USING fts5vocab(main, email_text, row)")
        return {term for (term,) in db.execute("SELECT term FROM temp.vocabulary")}


def test_a_destroyed_emails_words_are_gone_from_the_index(keeper: Server) -> None:
    """Deleted means gone from the full-text index too: the words only a destroyed Email had
    leave the index's vocabulary (the Email it shared a word with keeps it); so do the words
    of an account removed."""
    uma = keeper.client("uma@example.com")
    account_id = keeper.accounts["uma@example.com"]
    inbox = inbox_of(uma, account_id)
    kept = import_(uma, account_id, inbox, message("Quokka kept", "<kept@example.com>"))
    doomed = import_(uma, account_id, inbox, message(
        "Quokka zyzzogeton wombatreport", "<doomed@example.com>"))  # fmt: skip
    assert {"quokka", "zyzzogeton", "wombatreport", "kept"} <= indexed_words(keeper)
    result = uma.ok("Email/set", {"accountId": account_id, "destroy": [doomed["id"]]})
    assert result["destroyed"] == [doomed["id"]]
    words = indexed_words(keeper)
    assert {"quokka", "kept"} <= words
    assert not {"zyzzogeton", "wombatreport"} & words
    found = uma.ok("Email/query", {"accountId": account_id, "filter": {"text": "quokka"}})
    assert found["ids"] == [kept["id"]]

    jmapd(keeper.data, "account", "add", "xan@example.com", "--password", PASSWORD)
    xan = keeper.client_with(("xan@example.com", PASSWORD))
    xan_id = xan.session()["primaryAccounts"]["urn:ietf:params:jmap:mail"]
    import_(xan, xan_id, inbox_of(xan, xan_id), message("Xanthippe", "<xan@example.com>"))
    assert "xanthippe" in indexed_words(keeper)
    jmapd(keeper.data, "account", "remove", "xan@example.com", "--yes")
    words = indexed_words(keeper)
    assert "xanthippe" not in words and {"quokka", "kept"} <= words


# -- private files ------------------------------------------------------------------------------


def modes(data: Path) -> dict[str, int]:
    """Every path below the data directory (and itself) → its permission bits."""
    found = {".": stat.S_IMODE(data.stat().st_mode)}
    for path in data.rglob("*"):
        found[str(path.relative_to(data))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_the_data_directory_is_private(tmp_path: Path) -> None:
    """Issue 10: the data directory was 0755 and jmapd.sqlite3 0644: any local user could
    read password hashes and mail. Directories are 0700 and files 0600."""
    data = tmp_path / "data"
    data.mkdir()  # for the test's server.log; made 0755 here, tightened by the server
    srv = start_server(data)
    try:
        demo = (data / "demo-credentials.txt").read_text().strip()
        client = srv.client_with(tuple(demo.split(":", 1)))
        account_id = client.session()["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        import_(client, account_id, inbox_of(client, account_id), message("Private", "<p@x>"))
    finally:
        stop_server(srv)
    found = {p: m for p, m in modes(data).items() if p != "server.log"}
    assert any(p.startswith("blobs/") for p in found) or DATABASES.by_data.get(data)
    for path, mode in found.items():
        is_dir = (data / path).is_dir()
        assert mode == (0o700 if is_dir else 0o600), (path, oct(mode))


def test_loose_permissions_are_tightened_on_start(tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "kit@example.com", "--password", PASSWORD)
    srv = start_server(tmp_path)
    stop_server(srv)
    loosened = [tmp_path, *tmp_path.glob("blobs"), *tmp_path.glob("jmapd.sqlite3*")]
    for path in loosened:
        path.chmod(0o755 if path.is_dir() else 0o644)
    srv = start_server(tmp_path)
    try:
        assert "tightened permissions of" in srv.log()
    finally:
        stop_server(srv)
    for path in loosened:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


# -- /changes after one large transaction ---------------------------------------------------------


def test_changes_after_destroying_a_full_mailbox(keeper: Server) -> None:
    """Issue 10: one Mailbox destroy with onDestroyRemoveEmails over maxChanges Emails made
    every older state cannotCalculateChanges forever. The pages now end within the one
    transaction; every Email is reported destroyed once."""
    uma = keeper.client("uma@example.com")
    account_id = keeper.accounts["uma@example.com"]
    box = uma.ok("Mailbox/set", {"accountId": account_id, "create": {"b": {"name": "Full"}}})
    box_id = box["created"]["b"]["id"]
    emails = [
        import_(uma, account_id, box_id, message(f"Full {i}", f"<full{i}@example.com>"))["id"]
        for i in range(7)
    ]
    since = uma.ok("Email/get", {"accountId": account_id, "ids": []})["state"]
    uma.ok("Mailbox/set", {"accountId": account_id, "destroy": [box_id],
                           "onDestroyRemoveEmails": True})  # fmt: skip
    destroyed: list[str] = []
    for _ in range(10):
        page = uma.ok(
            "Email/changes", {"accountId": account_id, "sinceState": since, "maxChanges": 3}
        )
        assert page["created"] == page["updated"] == []
        assert len(page["destroyed"]) <= 3
        destroyed += page["destroyed"]
        since = page["newState"]
        if not page["hasMoreChanges"]:
            break
    assert sorted(destroyed) == sorted(emails)


# -- push across a lost connection ----------------------------------------------------------------


def interrupt_push(data: Path) -> None:
    """On PostgreSQL, end every node's LISTEN connection (as a network blip or a database
    restart would) and send a malformed notification; SQLite nodes poll, with nothing to
    interrupt."""
    url = DATABASES.by_data.get(data)
    if not url:
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("NOTIFY jmapd_state, 'not json'")
        time.sleep(0.2)
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )


def test_a_change_made_while_push_reconnects_is_announced(tmp_path: Path) -> None:
    """Issue 10: a change committed while a node's LISTEN connection reconnected was never
    announced there, and the listener thread died on anything but a database error."""
    jmapd(tmp_path, "account", "add", "ray@example.com", "--password", PASSWORD)
    listener, writer = start_server(tmp_path), start_server(tmp_path)
    try:
        ray_id = jmapd(tmp_path, "account", "list").split()[0]
        reader = listener.client_with(("ray@example.com", PASSWORD))
        changer = writer.client_with(("ray@example.com", PASSWORD))
        with connect(reader, types="Note", closeafter="no") as events:
            for i in range(2):  # the second time, the listener must have survived the first
                interrupt_push(tmp_path)
                created = changer.ok(
                    "Note/set", {"accountId": ray_id, "create": {"n": {"title": f"gap {i}"}}}
                )
                name, data = events.next()
                assert name == "state", (name, data)
                assert data["changed"][ray_id]["Note"] == created["newState"]
    finally:
        stop_server(writer)
        stop_server(listener)
