"""Bad input to jmapd's mail intake (issue 12, "Bad input"), over LMTP (RFC 2033) and plain
SMTP (RFC 5321) alike, spoken byte by byte to a real jmapd on both backends: each case gets
its exact reply, the session goes on, nothing is stored half, and what parses badly is
stored whole. Also SMTP's one reply for all recipients (`smtp_reply`) and duplicate
suppression by Message-ID, on in this server."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.test_lmtp import LMTPClient, find, inbox
from tests.conftest import (
    MAIL,
    Client,
    Server,
    database_env,
    free_port,
    jmapd,
    start_server,
    stop_server,
)

MAX_SIZE = 100_000
USERS = {"cat@example.com": "cat-secret", "dan@example.com": "dan-secret",
         "eve@example.com": "eve-secret"}  # fmt: skip
FROM = "sender@remote.example"
TRACE = b"Return-Path: <sender@remote.example>\r\nDelivered-To: %s\r\n"


@dataclass
class Intake:
    server: Server
    ports: dict[str, int]  # protocol → port

    def client(self, name: str) -> Client:
        return self.server.client_with((name, USERS[name]))

    def session(self, protocol: str) -> LMTPClient:
        client = LMTPClient(self.ports[protocol])
        code, _ = client.command(("LHLO" if protocol == "lmtp" else "EHLO") + " test.example")
        assert code == 250
        return client


@pytest.fixture(scope="module")
def intake(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intake]:
    data = tmp_path_factory.mktemp("intake")
    for name, password in USERS.items():
        jmapd(data, "account", "add", name, "--password", password)
    ports = {"lmtp": free_port(), "smtp": free_port()}
    env = {"JMAPD_MAX_MESSAGE_SIZE": str(MAX_SIZE), "JMAPD_DUPLICATE_SUPPRESSION": "true"}
    args = ["--lmtp", f"127.0.0.1:{ports['lmtp']}", "--smtp", f"127.0.0.1:{ports['smtp']}"]
    server = start_server(data, env, args)
    try:
        yield Intake(server, ports)
    finally:
        stop_server(server)


@pytest.fixture(params=["lmtp", "smtp"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def message(subject: str, body: bytes = b"Hello.\r\n") -> bytes:
    msgid = f"<{subject}-{time.monotonic_ns()}@remote.example>"
    head = f"From: <{FROM}>\r\nTo: cat@example.com\r\nSubject: {subject}\r\nMessage-ID: {msgid}"
    return head.encode() + b"\r\n\r\n" + body


def transaction(client: LMTPClient, protocol: str, recipients: list[str],
                raw: bytes) -> list[tuple[int, str]]:  # fmt: skip
    """MAIL, RCPTs, DATA: the replies after DATA (LMTP: one per accepted recipient)."""
    assert client.command(f"MAIL FROM:<{FROM}>")[0] == 250
    accepted = [r for r in recipients if client.command(f"RCPT TO:<{r}>")[0] == 250]
    return client.data(raw, len(accepted) if protocol == "lmtp" else 1)


def deliver(intake: Intake, protocol: str, recipients: list[str],
            raw: bytes) -> list[tuple[int, str]]:  # fmt: skip
    client = intake.session(protocol)
    try:
        return transaction(client, protocol, recipients, raw)
    finally:
        client.close()


def download(client: Client, blob_id: str) -> bytes:
    account = client.session()["primaryAccounts"][MAIL]
    url = client.session()["downloadUrl"]
    for var, value in {"accountId": account, "blobId": blob_id, "name": "m.eml",
                       "type": "message/rfc822"}.items():  # fmt: skip
        url = url.replace("{" + var + "}", value)
    got = client.http.get(url)
    assert got.status_code == 200
    return got.content


def stored(intake: Intake, name: str, subject: str) -> list[bytes]:
    client = intake.client(name)
    return [download(client, email["blobId"]) for email in find(client, subject)]


def test_malformed_commands_get_5xx_and_the_session_goes_on(intake: Intake, protocol: str) -> None:
    """RFC 5321 §4.2.4 (500 unknown command, 501 bad arguments), §4.1.4 (503 bad sequence)."""
    other = "EHLO x" if protocol == "lmtp" else "LHLO x"
    client = intake.session(protocol)
    try:
        for line, code in [
            (b"FROB\r\n", 500), (other.encode() + b"\r\n", 500),
            (b"\xff\xfe\x00\r\n", 500), (b"X" * 2000 + b"\r\n", 500),
            (b"RCPT TO:<cat@example.com>\r\n", 503), (b"DATA\r\n", 503),
            (b"MAIL TO:<a@remote.example>\r\n", 501), (b"MAIL FROM:\r\n", 501),
            (b"MAIL FROM:<a@remote.example> SIZE=many\r\n", 501),
            (b"MAIL FROM:<a@remote.example> BODY=9BIT\r\n", 501),
            (b"MAIL FROM:<a@remote.example> FROB=1\r\n", 555),
            (b"MAIL FROM:<a@remote.example>\r\n", 250),
            (b"MAIL FROM:<b@remote.example>\r\n", 503),  # nested
            (b"RCPT TO:\r\n", 501), (b"RCPT FOR:<cat@example.com>\r\n", 501),
            (b"DATA now\r\n", 503), (b"RSET\r\n", 250), (b"NOOP\r\n", 250),
        ]:  # fmt: skip
            client.send(line)
            assert client.reply()[0] == code, line
        [(code, _)] = transaction(
            client, protocol, ["cat@example.com"], message(f"after-junk-{protocol}")
        )
        assert code == 250
    finally:
        client.close()
    assert len(stored(intake, "cat@example.com", f"after-junk-{protocol}")) == 1


def test_unknown_recipients_are_refused_at_rcpt(intake: Intake, protocol: str) -> None:
    client = intake.session(protocol)
    try:
        assert client.command(f"MAIL FROM:<{FROM}>")[0] == 250
        for address, code, status in [("nobody@example.com", 550, "5.1.1"),
                                      ("cat@nowhere.example", 550, "5.1.1"),
                                      ("@example.com", 553, "5.1.3")]:  # fmt: skip
            got, text = client.command(f"RCPT TO:<{address}>")
            assert (got, text[0][:5]) == (code, status), text
        assert client.command("RCPT TO:<cat@example.com>")[0] == 250
        assert client.data(message(f"beside-unknown-{protocol}"), 1)[0][0] == 250
    finally:
        client.close()
    assert len(stored(intake, "cat@example.com", f"beside-unknown-{protocol}")) == 1


def test_bare_lf_is_stored_as_sent_and_does_not_end_data(intake: Intake, protocol: str) -> None:
    """Only CRLF.CRLF ends DATA (RFC 5321 §4.1.1.4): a bare-LF dot line inside the message
    smuggles no second message in (the 2023 "SMTP smuggling" attacks)."""
    subject = f"bare-lf-{protocol}"
    smuggled = f"smuggled-{protocol}"
    raw = (f"Subject: {subject}\nFrom: <{FROM}>\n\nline one\n.\nMAIL FROM:<{FROM}>\r\n"
           f"RCPT TO:<cat@example.com>\r\nDATA\r\nSubject: {smuggled}\r\n\r\nx\r\n.\r"
           "\nlast line\n").encode()  # fmt: skip
    client = intake.session(protocol)
    try:
        [(code, _)] = transaction(client, protocol, ["cat@example.com"], raw)
        assert code == 250
        assert client.command("NOOP")[0] == 250  # no other reply is waiting
    finally:
        client.close()
    assert stored(intake, "cat@example.com", smuggled) == []
    [blob] = stored(intake, "cat@example.com", subject)
    assert blob == TRACE % b"cat@example.com" + raw + b"\r\n"


@pytest.mark.parametrize(
    "name, raw",
    [
        ("8bit-header", b"Subject: eight-bit \xc3\xa9t\xc3\xa9 \xff\xfe\r\n"
                        b"From: J\xf6rg <j@x.example>\r\n\r\nbody \xe9\r\n"),
        ("nul", b"Subject: nul-bytes\r\nX-Nul: a\x00b\r\n\r\nbody\x00with NUL\r\n\x00\r\n"),
        ("no-headers", b"just text, no header section at all\r\nsecond line"),
        ("broken-mime", b"Subject: broken-mime\r\nMIME-Version: 1.0\r\nContent-Type: multipart/"
                        b"mixed; boundary=\"never\"\r\n\r\n--other\r\nContent-Type: text/plain\r\n"
                        b"\r\n=?broken\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%not base64"),
        ("long-line", b"Subject: long-line\r\n\r\n" + b"x" * 5000 + b"\r\n"),
        ("dots", b"Subject: dots\r\n\r\n.\r\n..\r\n. leading\r\n"),
    ],
)  # fmt: skip
def test_what_parses_badly_is_stored_whole(intake: Intake, protocol: str, name: str,
                                          raw: bytes) -> None:  # fmt: skip
    """8-bit header octets, NUL octets, no header section, broken MIME, a line longer than
    RFC 5321 §4.5.3.1.6's 1000 octets, dot lines: the blob is the octets sent (dot-stuffing
    undone, §4.5.2) with the trace fields in front."""
    marker = f"{name}{protocol}{time.monotonic_ns()}".replace("-", "").encode()
    raw = raw.replace(b"\r\n", b" " + marker + b"\r\n", 1)  # the first line, found by subject
    [(code, _)] = deliver(intake, protocol, ["cat@example.com"], raw)
    assert code == 250
    client = intake.client("cat@example.com")
    account, box = inbox(client)
    where = {"inMailbox": box, "text": marker.decode()} if name == "no-headers" else None
    if where is None:
        blobs = stored(intake, "cat@example.com", marker.decode())
    else:
        ids = client.ok("Email/query", {"accountId": account, "filter": where})["ids"]
        emails = client.ok("Email/get", {"accountId": account, "ids": ids,
                                         "properties": ["blobId"]})["list"]  # fmt: skip
        blobs = [download(client, e["blobId"]) for e in emails]
    ending = b"" if raw.endswith(b"\r\n") else b"\r\n"
    assert blobs == [TRACE % b"cat@example.com" + raw + ending]


def test_oversize_is_refused_and_nothing_stored(intake: Intake, protocol: str) -> None:
    """SIZE in the greeting and 552 5.3.4 (RFC 1870, RFC 3463), at MAIL FROM and after DATA;
    after DATA, LMTP answers each recipient (RFC 2033 §4.2)."""
    client = LMTPClient(intake.ports[protocol])
    try:
        code, lines = client.command(("LHLO" if protocol == "lmtp" else "EHLO") + " t.example")
        assert code == 250 and f"SIZE {MAX_SIZE}" in lines
        code, text = client.command(f"MAIL FROM:<{FROM}> SIZE={MAX_SIZE + 1}")
        assert (code, text[0][:5]) == (552, "5.3.4")
        assert client.command(f"MAIL FROM:<{FROM}> SIZE={MAX_SIZE}")[0] == 250
        assert client.command("RCPT TO:<cat@example.com>")[0] == 250
        assert client.command("RCPT TO:<dan@example.com>")[0] == 250
        big = message(f"too-big-{protocol}", b"y" * 78 + b"\r\n") * (MAX_SIZE // 80 + 1)
        replies = client.data(big, 2 if protocol == "lmtp" else 1)
        assert [(code, text[:5]) for code, text in replies] == [(552, "5.3.4")] * len(replies)
        assert client.command("NOOP")[0] == 250  # nothing else was said; the session goes on
        [(code, _)] = transaction(client, protocol, ["cat@example.com"],
                                  message(f"after-big-{protocol}"))  # fmt: skip
        assert code == 250
    finally:
        client.close()
    for name in ("cat@example.com", "dan@example.com"):
        assert stored(intake, name, f"too-big-{protocol}") == []
    assert len(stored(intake, "cat@example.com", f"after-big-{protocol}")) == 1


def test_a_client_gone_mid_data_stores_nothing(intake: Intake, protocol: str) -> None:
    for cut in (10, 200):  # in the header section; in the body, after a full line
        client = intake.session(protocol)
        assert client.command(f"MAIL FROM:<{FROM}>")[0] == 250
        assert client.command("RCPT TO:<cat@example.com>")[0] == 250
        assert client.command("DATA")[0] == 354
        client.send(message(f"half-{protocol}", b"z" * 300 + b"\r\n")[:cut])
        client.close()
    time.sleep(0.5)
    assert stored(intake, "cat@example.com", f"half-{protocol}") == []
    assert deliver(intake, protocol, ["cat@example.com"], message("after-half"))[0][0] == 250


def test_smtp_answers_once_for_all_recipients(intake: Intake) -> None:
    """A real SMTP client (smtplib): one 250 after DATA; unknown recipients refused at RCPT."""
    raw = message("smtp-many")
    with smtplib.SMTP("127.0.0.1", intake.ports["smtp"], timeout=15) as smtp:
        assert smtp.ehlo()[0] == 250 and smtp.has_extn("size") and smtp.has_extn("8bitmime")
        refused = smtp.sendmail(FROM, ["cat@example.com", "nobody@example.com",
                                       "dan@example.com"], raw)  # fmt: skip
    assert refused == {
        "nobody@example.com": (550, b"5.1.1 <nobody@example.com>: no such user here")
    }
    for name in ("cat@example.com", "dan@example.com"):
        assert stored(intake, name, "smtp-many") == [TRACE % name.encode() + raw]


def test_a_transient_failure_for_one_recipient(intake: Intake) -> None:
    """eve has no Inbox (she destroyed it): her delivery fails for now (452 4.2.0). LMTP says
    so for her alone; SMTP answers the whole message with it (`smtp_reply`): the relay sends
    it again to both, and cat, who has it, does not get it twice (duplicate suppression)."""
    eve = intake.client("eve@example.com")
    account, box = inbox(eve)
    eve.ok("Mailbox/set", {"accountId": account, "destroy": [box],
                           "onDestroyRemoveEmails": True})  # fmt: skip
    try:
        raw = message("eve-has-no-inbox")
        replies = deliver(intake, "lmtp", ["cat@example.com", "eve@example.com"], raw)
        assert [(code, text[:5]) for code, text in replies] == [(250, "2.1.5"), (452, "4.2.0")]
        replies = deliver(intake, "smtp", ["cat@example.com", "eve@example.com"], raw)
        assert [(code, text[:5]) for code, text in replies] == [(452, "4.2.0")]
        assert len(stored(intake, "cat@example.com", "eve-has-no-inbox")) == 1
    finally:
        eve.ok("Mailbox/set", {"accountId": account,
                               "create": {"i": {"name": "Inbox", "role": "inbox"}}})  # fmt: skip
    raw = message("eve-has-an-inbox")
    assert deliver(intake, "smtp", ["cat@example.com", "eve@example.com"], raw)[0][0] == 250


def test_duplicates_by_message_id_are_acknowledged_not_stored(intake: Intake,
                                                              protocol: str) -> None:  # fmt: skip
    """duplicate_suppression: a Message-ID already in the recipient's Inbox is answered 250
    and not stored again; per recipient; not once the first copy left the Inbox; a message
    without a Message-ID is never suppressed."""
    raw = message(f"dup-{protocol}")
    assert [c for c, _ in deliver(intake, protocol, ["cat@example.com"], raw)] == [250]
    both = deliver(intake, protocol, ["cat@example.com", "dan@example.com"], raw)
    assert [c for c, _ in both] == [250] * len(both)
    assert len(stored(intake, "cat@example.com", f"dup-{protocol}")) == 1
    assert len(stored(intake, "dan@example.com", f"dup-{protocol}")) == 1
    cat = intake.client("cat@example.com")
    account, _ = inbox(cat)
    [email] = find(cat, f"dup-{protocol}")
    made = cat.ok("Mailbox/set", {"accountId": account, "create": {"a": {"name": f"a-{protocol}"}}})
    other = made["created"]["a"]["id"]
    cat.ok("Email/set", {"accountId": account,
                         "update": {email["id"]: {"mailboxIds": {other: True}}}})  # fmt: skip
    assert deliver(intake, protocol, ["cat@example.com"], raw)[0][0] == 250
    assert len(find(cat, f"dup-{protocol}")) == 1  # in the Inbox again: it had left it
    anonymous = f"Subject: no-id-{protocol}\r\n\r\nx\r\n".encode()
    for _ in range(2):
        assert deliver(intake, protocol, ["cat@example.com"], anonymous)[0][0] == 250
    assert len(stored(intake, "cat@example.com", f"no-id-{protocol}")) == 2


def test_smtp_on_a_port_in_use_is_a_one_line_error(intake: Intake, tmp_path: Path) -> None:
    where = f"127.0.0.1:{intake.ports['smtp']}"
    result = subprocess.run(
        [sys.executable, "-m", "jmapd.cli", "serve", "--data", str(tmp_path),
         "--listen", f"127.0.0.1:{free_port()}", "--smtp", where],
        env={**os.environ, **database_env(tmp_path)}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result
    assert result.stderr == f"jmapd: --smtp {where}: address already in use\n"
