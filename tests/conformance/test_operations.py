"""Issue 10, operating jmapd: `jmapd check [--repair]` finds and repairs what can drift,
`jmapd backup` / `jmapd restore` give back every account's whole JMAP view, and the access
log and Prometheus metrics say what happened. On both backends."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conformance.test_email import import_, message, upload
from tests.conftest import DATABASES, Client, Server, free_port, jmapd, start_server, stop_server
from tests.test_cli import run, run_sql

PASSWORD = "operations-secret"
MAIL = "urn:ietf:params:jmap:mail"


def mailboxes(client: Client, account_id: str) -> dict[str, str]:
    found = client.ok("Mailbox/get", {"accountId": account_id, "ids": None})["list"]
    return {m["role"] or m["name"]: m["id"] for m in found}


ATTACHMENT = (
    b"From: Ann <ann@example.com>\r\nTo: bo@example.com\r\nSubject: Plans\r\n"
    b"Message-ID: <plans@example.com>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
    b"See the plan.\r\n--b\r\nContent-Type: application/pdf; name=plan.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
)


def fill(server: Server, name: str) -> tuple[Client, str]:
    """An account with mail in two mailboxes, a thread, keywords, a draft and a note."""
    jmapd(server.data, "account", "add", name, "--password", PASSWORD)
    client = server.client_with((name, PASSWORD))
    account_id = client.session()["primaryAccounts"][MAIL]
    boxes = mailboxes(client, account_id)
    import_(client, account_id, boxes["inbox"], ATTACHMENT, keywords={"$seen": True})
    import_(client, account_id, boxes["inbox"],
            message("Re: Plans", "<re@example.com>", refs="<plans@example.com>"))  # fmt: skip
    import_(client, account_id, boxes["archive"], message("Old", "<old@example.com>"))
    draft = {"mailboxIds": {boxes["drafts"]: True}, "subject": "Draft",
             "textBody": [{"partId": "t"}], "bodyValues": {"t": {"value": "unsent"}}}  # fmt: skip
    client.ok("Email/set", {"accountId": account_id, "create": {"d": draft}})
    client.ok("Note/set", {"accountId": account_id, "create": {"n": {"title": "kept"}}})
    return client, account_id


def view(client: Client, account_id: str) -> dict[str, Any]:
    """Everything a client sees of an account, blobs' bytes included."""
    out: dict[str, Any] = {}
    for type in ("Mailbox", "Note"):
        out[type] = client.ok(f"{type}/get", {"accountId": account_id, "ids": None})
    ids = client.ok("Email/query", {"accountId": account_id})["ids"]
    emails = client.ok("Email/get", {"accountId": account_id, "ids": ids,
                                     "properties": None, "fetchAllBodyValues": True,
                                     "bodyProperties": ["partId", "blobId", "size", "type",
                                                        "subParts"]})  # fmt: skip
    out["Email"] = emails
    out["Thread"] = client.ok(
        "Thread/get",
        {"accountId": account_id, "ids": sorted({e["threadId"] for e in emails["list"]})},
    )
    url = client.session()["downloadUrl"]
    out["blobs"] = {}
    for email in emails["list"]:
        for blob_id in [email["blobId"], *(p["blobId"] for p in email["attachments"])]:
            link = url.replace("{accountId}", account_id).replace("{blobId}", blob_id)
            link = link.replace("{name}", "x").replace("{type}", "application/octet-stream")
            out["blobs"][blob_id] = client.http.get(link).content
    out["search"] = client.ok("Email/query", {"accountId": account_id,
                                              "filter": {"text": "plan"}})["ids"]  # fmt: skip
    return out


def test_backup_and_restore_give_back_every_account(server: Server, tmp_path: Path) -> None:
    """Issue 10 item 11: a backup taken while the server runs, restored into a fresh data
    directory, shows every account exactly as before: records, states, threads, counts,
    bodies, blobs, search, and the same credentials."""
    names = [f"bk{i}-{time.monotonic_ns()}@example.com" for i in range(2)]
    filled = [fill(server, name) for name in names]
    before = [view(client, account_id) for client, account_id in filled]
    out = jmapd(server.data, "backup", str(tmp_path / "backup"))
    assert re.fullmatch(r"jmapd: backed up \d+ accounts, \d+ records and \d+ blob files to "
                        r".*\n", out), out  # fmt: skip
    restored = tmp_path / "restored"
    restored.mkdir()
    out = jmapd(restored, "restore", str(tmp_path / "backup"))
    assert out.startswith("jmapd: restored ")
    second = start_server(restored)
    try:
        for name, (_, account_id), seen in zip(names, filled, before, strict=True):
            client = second.client_with((name, PASSWORD))
            assert view(client, account_id) == seen
        assert run(restored, "check").returncode == 0
    finally:
        stop_server(second)
    # Restoring into a data directory that has accounts is refused.
    again = run(restored, "restore", str(tmp_path / "backup"))
    assert again.returncode == 2 and "has accounts" in again.stderr


def test_a_backup_restores_into_the_other_backend(server: Server, tmp_path: Path) -> None:
    """A backup of one backend restores into the other (docs/operation.md): their schema
    versions stay in step, though SQLite's migration 11 changed only its own full-text
    table."""
    name = f"other-{time.monotonic_ns()}@example.com"
    client, account_id = fill(server, name)
    seen = view(client, account_id)
    jmapd(server.data, "backup", str(tmp_path / "backup"))
    other = tmp_path / "other"
    other.mkdir()
    DATABASES.by_data[other] = "" if DATABASES.by_data.get(server.data) else DATABASES._create()
    out = jmapd(other, "restore", str(tmp_path / "backup"))
    assert out.startswith("jmapd: restored "), out
    second = start_server(other)
    try:
        assert view(second.client_with((name, PASSWORD)), account_id) == seen
    finally:
        stop_server(second)


def test_check_reports_nothing_on_a_sound_server(server: Server) -> None:
    fill(server, f"sound-{time.monotonic_ns()}@example.com")
    result = run(server.data, "check")
    assert result.returncode == 0, result.stdout
    assert result.stdout.endswith("jmapd: 0 problems\n")


def test_check_finds_and_repairs_what_drifted(tmp_path: Path) -> None:
    """Issue 10 item 10: counts, the message index, threads, blob references and states,
    each damaged by hand, are reported, then repaired; the JMAP view is what it was."""
    srv = start_server(tmp_path)
    try:
        client, account_id = fill(srv, "drift@example.com")
        seen = view(client, account_id)
    finally:
        stop_server(srv)
    inbox = seen["Mailbox"]["list"]
    run_sql(
        tmp_path,
        f"UPDATE mailbox_counts SET emails = emails + 5 WHERE account_id = '{account_id}'",
        f"DELETE FROM email_keywords WHERE account_id = '{account_id}'",
        f"UPDATE blobs SET refs = refs + 3 WHERE account_id = '{account_id}' AND uploader = ''",
        f"UPDATE type_states SET state = 1 WHERE account_id = '{account_id}' AND type = 'Note'",
    )
    found = run(tmp_path, "check")
    assert found.returncode == 1
    for what in ("indexed keywords differ", "blobs are referenced more or less often",
                 "Note state 1 is behind"):  # fmt: skip
        assert what in found.stdout, found.stdout
    repaired = run(tmp_path, "check", "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert "repaired" in repaired.stdout and ", 0 left" in repaired.stdout
    assert run(tmp_path, "check").returncode == 0
    run_sql(tmp_path, f"UPDATE mailbox_counts SET unread = 7 WHERE account_id = '{account_id}'")
    assert "the counts of" in run(tmp_path, "check").stdout
    assert run(tmp_path, "check", "--repair").returncode == 0
    srv = start_server(tmp_path)
    try:
        client = srv.client_with(("drift@example.com", PASSWORD))
        again = view(client, account_id)
        assert again["Mailbox"]["list"] == inbox
        assert again["Email"]["list"] == seen["Email"]["list"]
    finally:
        stop_server(srv)


def test_the_access_log_says_what_happened_and_no_secret(tmp_path: Path) -> None:
    """Issue 10 item 16: one JSON line per request: method names, account, duration,
    status; no bodies, no secrets."""
    jmapd(tmp_path, "account", "add", "log@example.com", "--password", PASSWORD)
    srv = start_server(tmp_path)
    try:
        client = srv.client_with(("log@example.com", PASSWORD))
        account_id = client.session()["primaryAccounts"][MAIL]
        client.ok("Mailbox/get", {"accountId": account_id, "ids": None})
        upload(client, account_id, b"the-body-that-must-not-be-logged")
    finally:
        stop_server(srv)  # a line is logged once its response is sent: read them after
    lines = [orjson.loads(line.split("jmapd.access: ", 1)[1])
             for line in srv.log().splitlines() if "jmapd.access: " in line]  # fmt: skip
    api = next(line for line in lines if line["path"] == "/jmap/api")
    assert api["status"] == 200 and api["method"] == "POST"
    assert api["calls"] == ["Mailbox/get"] and api["user"] == "log@example.com"
    assert isinstance(api["ms"], float) and api["bytes"] > 0 and api["client"] == "127.0.0.1"
    assert any(line["path"].startswith("/jmap/upload/") for line in lines)
    text = srv.log()
    for secret in (PASSWORD, "the-body-that-must-not-be-logged", "Basic "):
        assert secret not in text


def test_prometheus_metrics_on_their_own_listener(tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "met@example.com", "--password", PASSWORD)
    port = free_port()
    srv = start_server(tmp_path, args=["--metrics-listen", f"127.0.0.1:{port}", "--workers", "2"])
    try:
        client = srv.client_with(("met@example.com", PASSWORD))
        account_id = client.session()["primaryAccounts"][MAIL]
        for _ in range(4):
            client.ok("Mailbox/get", {"accountId": account_id, "ids": None})
        import_(client, account_id, mailboxes(client, account_id)["inbox"],
                message("Counted", "<counted@example.com>"))  # fmt: skip
        with httpx.Client() as http:
            assert http.get(srv.base + "/jmap/session",
                            auth=("met@example.com", "wrong")).status_code == 401  # fmt: skip
            text = http.get(f"http://127.0.0.1:{port}/metrics").text
            assert http.get(srv.base + "/metrics").status_code == 404  # not on the API's port
    finally:
        stop_server(srv)
    calls = re.search(r'jmapd_method_calls_total\{method="Mailbox/get",outcome="ok"\} (\S+)', text)
    assert calls and float(calls[1]) >= 4
    assert (
        re.search(r"jmapd_failed_logins_total \d", text)
        and "jmapd_failed_logins_total 0" not in text
    )
    assert any(line.startswith("jmapd_http_request_duration_seconds_bucket{")
               and 'route="/jmap/api"' in line and 'le="0.1"' in line
               for line in text.splitlines())  # fmt: skip
    assert re.search(r"jmapd_emails_stored_total [1-9]", text)
    assert "jmapd_event_streams" in text
