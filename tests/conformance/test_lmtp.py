"""Mail in over LMTP (RFC 2033, issue 12 item 1), spoken byte by byte by a client in the test:
recipients by account name, alias, +tag and catch-all; a reply per recipient after DATA, 250
only once the message is in the Inbox; SIZE; bad input; the delivery pushed with
EmailDelivery (RFC 8621 §1.5). On both backends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.test_eventsource import Events
from tests.conftest import (
    CORE,
    MAIL,
    Client,
    Server,
    database_env,
    free_port,
    jmapd,
    start_server,
    stop_server,
)

MAX_SIZE = 200_000
USERS = {"ann@example.com": "ann-secret", "ben@example.com": "ben-secret"}


class LMTPClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> tuple[int, list[str]]:
        lines = []
        while True:
            line = self.file.readline().decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                raise EOFError("the server closed the connection")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> tuple[int, list[str]]:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def data(self, message: bytes, replies: int) -> list[tuple[int, str]]:
        code, _ = self.command("DATA")
        assert code == 354, code
        lines = message.split(b"\r\n")
        stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)
        self.send(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        out = []
        for _ in range(replies):
            code, text = self.reply()
            out.append((code, text[0]))
        return out

    def close(self) -> None:
        self.sock.close()


class Mail:
    """A server with LMTP, and a client per user."""

    def __init__(self, server: Server, lmtp_port: int) -> None:
        self.server = server
        self.port = lmtp_port
        self.clients = {name: server.client_with((name, pw)) for name, pw in USERS.items()}

    def lmtp(self) -> LMTPClient:
        client = LMTPClient(self.port)
        code, _ = client.command("LHLO test.example")
        assert code == 250
        return client

    def deliver(self, recipients: list[str], message: bytes,
                mail_from: str = "sender@remote.example") -> list[tuple[int, str]]:  # fmt: skip
        client = self.lmtp()
        try:
            assert client.command(f"MAIL FROM:<{mail_from}>")[0] == 250
            accepted = [r for r in recipients if client.command(f"RCPT TO:<{r}>")[0] == 250]
            return client.data(message, len(accepted))
        finally:
            client.close()


@pytest.fixture(scope="module")
def mail(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mail]:
    data = tmp_path_factory.mktemp("lmtp")
    for name, password in USERS.items():
        jmapd(data, "account", "add", name, "--password", password)
    port = free_port()
    server = start_server(data, {"JMAPD_MAX_MESSAGE_SIZE": str(MAX_SIZE)},
                          ["--lmtp", f"127.0.0.1:{port}"])  # fmt: skip
    try:
        yield Mail(server, port)
    finally:
        stop_server(server)


def inbox(client: Client) -> tuple[str, str]:
    account = client.session()["primaryAccounts"][MAIL]
    boxes = client.ok("Mailbox/get", {"accountId": account, "ids": None})["list"]
    return account, next(m["id"] for m in boxes if m["role"] == "inbox")


def find(client: Client, subject: str) -> list[dict[str, Any]]:
    account, box = inbox(client)
    where = {"inMailbox": box, "subject": subject}
    ids = client.ok("Email/query", {"accountId": account, "filter": where})["ids"]
    got: list[dict[str, Any]] = client.ok("Email/get", {
        "accountId": account, "ids": ids,
        "properties": ["subject", "mailboxIds", "keywords", "receivedAt", "blobId", "size",
                       "header:Delivered-To:asText", "header:Return-Path"],
    })["list"]  # fmt: skip
    return got


def message(subject: str, body: str = "Hello.", extra: bytes = b"") -> bytes:
    return (f"From: Sender <sender@remote.example>\r\nTo: ann@example.com\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@remote.example>\r\n"
            f"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n").encode() + extra + (
                f"\r\n{body}\r\n").encode()  # fmt: skip


def test_lhlo_announces_size(mail: Mail) -> None:
    client = LMTPClient(mail.port)
    try:
        assert client.greeting[0] == 220
        code, lines = client.command("LHLO test.example")
        assert code == 250
        assert f"SIZE {MAX_SIZE}" in lines
        assert "8BITMIME" in lines
        assert client.command("EHLO test.example")[0] == 500  # LMTP is not SMTP
    finally:
        client.close()


def test_a_reply_per_recipient_and_the_message_in_each_inbox(mail: Mail) -> None:
    before = time.time()
    replies = mail.deliver(["ann@example.com", "nobody@example.com", "ben@example.com"],
                           message("two-recipients"))  # fmt: skip
    assert [code for code, _ in replies] == [250, 250]
    assert "ann@example.com" in replies[0][1] and "ben@example.com" in replies[1][1]
    for name in USERS:
        [email] = find(mail.clients[name], "two-recipients")
        assert email["keywords"] == {}
        assert email["header:Delivered-To:asText"] == name
        assert email["header:Return-Path"] == " <sender@remote.example>"  # raw, as stored
        received = time.mktime(time.strptime(email["receivedAt"], "%Y-%m-%dT%H:%M:%SZ"))
        assert received - time.timezone >= int(before) - 1


def test_an_unknown_recipient_is_refused_at_rcpt(mail: Mail) -> None:
    client = mail.lmtp()
    try:
        assert client.command("MAIL FROM:<x@remote.example>")[0] == 250
        code, text = client.command("RCPT TO:<nobody@example.com>")
        assert code == 550 and text[0].startswith("5.1.1")
        assert client.command("DATA")[0] == 503  # no valid recipient
        assert client.command("RSET")[0] == 250  # and the session goes on
        assert client.command("MAIL FROM:<x@remote.example>")[0] == 250
        assert client.command("RCPT TO:<ann@example.com>")[0] == 250
        assert client.data(message("after-refusal"), 1)[0][0] == 250
    finally:
        client.close()
    assert len(find(mail.clients["ann@example.com"], "after-refusal")) == 1


def test_aliases_tags_and_catch_all(mail: Mail) -> None:
    data = mail.server.data
    jmapd(data, "account", "alias", "add", "ben@example.com", "Benjamin@Example.com")
    jmapd(data, "account", "alias", "add", "ben@example.com", "@catch.example")
    assert jmapd(data, "account", "alias", "list", "ben@example.com").split() == [
        "@catch.example", "benjamin@example.com"]  # fmt: skip
    replies = mail.deliver(["benjamin@example.com", "ann+lists@example.com",
                            "whoever@catch.example", "BEN@EXAMPLE.COM"],
                           message("addressed"))  # fmt: skip
    assert [code for code, _ in replies] == [250] * 4
    assert len(find(mail.clients["ben@example.com"], "addressed")) == 3
    assert len(find(mail.clients["ann@example.com"], "addressed")) == 1
    jmapd(data, "account", "alias", "remove", "ben@example.com", "@catch.example")
    client = mail.lmtp()
    try:
        assert client.command("MAIL FROM:<>")[0] == 250
        assert client.command("RCPT TO:<whoever@catch.example>")[0] == 550
    finally:
        client.close()


def test_an_account_removed_after_its_rcpt_defers_then_refuses(mail: Mail) -> None:
    """The account a RCPT found is the one the DATA delivers to; removed in between, it has
    no Inbox: 452 for that recipient alone (the MTA tries again, and then RCPT says 550)."""
    data = mail.server.data
    jmapd(data, "account", "add", "leaving@example.com", "--password", "leaving-password")
    client = mail.lmtp()
    try:
        assert client.command("MAIL FROM:<sender@remote.example>")[0] == 250
        assert client.command("RCPT TO:<leaving@example.com>")[0] == 250
        assert client.command("RCPT TO:<ann@example.com>")[0] == 250
        jmapd(data, "account", "remove", "leaving@example.com", "--yes")
        replies = client.data(message("leaving"), 2)
        assert replies[0][0] == 452 and replies[0][1].startswith("4.2.0"), replies
        assert replies[1][0] == 250, replies
        assert client.command("MAIL FROM:<sender@remote.example>")[0] == 250
        assert client.command("RCPT TO:<leaving@example.com>")[0] == 550
    finally:
        client.close()
    assert len(find(mail.clients["ann@example.com"], "leaving")) == 1


def test_alias_errors_are_one_line_and_exit_2(mail: Mail) -> None:
    data = mail.server.data
    for args, why in [
        (["ann@example.com", "benjamin@example.com"], "already belongs to another account"),
        (["ann@example.com", "not an address"], "is not an address"),
        (["nobody@example.com", "x@example.com"], "no account"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "jmapd.cli", "account", "alias", "add", *args,
             "--data", str(data)],
            env={**os.environ, **database_env(data)},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result
        assert result.stderr.count("\n") == 1 and why in result.stderr, result.stderr


def test_size_is_enforced(mail: Mail) -> None:
    client = mail.lmtp()
    try:
        assert client.command(f"MAIL FROM:<x@remote.example> SIZE={MAX_SIZE + 1}")[0] == 552
        assert client.command("MAIL FROM:<x@remote.example>")[0] == 250
        assert client.command("RCPT TO:<ann@example.com>")[0] == 250
        big = message("too-big", "x" * 70 + "\r\n") + (b"y" * 70 + b"\r\n") * (MAX_SIZE // 72)
        code, _ = client.data(big, 1)[0]
        assert code == 552
    finally:
        client.close()
    assert find(mail.clients["ann@example.com"], "too-big") == []


def test_what_does_not_parse_is_delivered_whole(mail: Mail) -> None:
    """8-bit headers, NUL bytes, no header/body separator, a lone dot line: stored as sent."""
    odd = (b"Subject: odd-bytes \xff\xfe caf\xc3\xa9\r\nFrom: \x00nul@remote.example\r\n"
           b"X-Junk: \x01\x02\r\n..leading dot\r\nno blank line follows")  # fmt: skip
    replies = mail.deliver(["ann@example.com"], odd)
    assert replies[0][0] == 250
    client = mail.clients["ann@example.com"]
    [email] = find(client, "odd-bytes")
    account = client.session()["primaryAccounts"][MAIL]
    url = client.session()["downloadUrl"]
    for var, value in {"accountId": account, "blobId": email["blobId"], "name": "m.eml",
                       "type": "message/rfc822"}.items():  # fmt: skip
        url = url.replace("{" + var + "}", value)
    raw = client.http.get(url).content
    trace = b"Return-Path: <sender@remote.example>\r\nDelivered-To: ann@example.com\r\n"
    assert raw == trace + odd + b"\r\n"  # the client's dot-stuffing undone, nothing else


def test_a_client_that_stops_mid_data_stores_nothing(mail: Mail) -> None:
    client = mail.lmtp()
    assert client.command("MAIL FROM:<x@remote.example>")[0] == 250
    assert client.command("RCPT TO:<ann@example.com>")[0] == 250
    assert client.command("DATA")[0] == 354
    client.send(message("half-sent")[:60])
    client.close()
    time.sleep(0.5)
    assert find(mail.clients["ann@example.com"], "half-sent") == []
    assert mail.deliver(["ann@example.com"], message("after-half"))[0][0] == 250


def test_a_delivery_is_pushed_with_email_delivery(mail: Mail) -> None:
    client = mail.clients["ben@example.com"]
    account, _ = inbox(client)
    url = client.session()["eventSourceUrl"]
    url = url.replace("{types}", "EmailDelivery").replace("{closeafter}", "state")
    url = url.replace("{ping}", "0")
    with client.http.stream("GET", url, timeout=httpx.Timeout(10, read=10)) as r:
        events = Events(r)
        assert events.next()[0] == "comment"
        client.ok("Mailbox/set", {"accountId": account, "create": {"m": {"name": "not mail"}}})
        assert mail.deliver(["ben@example.com"], message("pushed"))[0][0] == 250
        name, data = events.next()
    assert name == "state"
    assert list(data["changed"]) == [account]
    assert list(data["changed"][account]) == ["EmailDelivery"]  # the Mailbox change was not


def test_email_delivery_changes_only_with_new_mail(mail: Mail) -> None:
    """A session's StateChange for EmailDelivery is the delivery's: Email/set does not move it."""
    client = mail.clients["ann@example.com"]
    account, box = inbox(client)
    create = {"e": {"mailboxIds": {box: True}, "subject": "draft", "from": [{"email": "a@b.c"}],
                    "bodyValues": {"1": {"value": "x"}},
                    "textBody": [{"partId": "1", "type": "text/plain"}]}}  # fmt: skip
    url = client.session()["eventSourceUrl"].replace("{types}", "EmailDelivery")
    url = url.replace("{closeafter}", "state").replace("{ping}", "0")
    with client.http.stream("GET", url, timeout=httpx.Timeout(10, read=3)) as r:
        events = Events(r)
        assert events.next()[0] == "comment"
        result = client.request([["Email/set", {"accountId": account, "create": create}, "c"]],
                                [CORE, MAIL])  # fmt: skip
        assert result["methodResponses"][0][1]["created"]
        with pytest.raises(httpx.ReadTimeout):
            events.next()


def test_lmtp_on_a_unix_socket(backend: str, tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "sock@example.com", "--password", "sock-secret")
    path = tmp_path / "lmtp.sock"
    server = start_server(tmp_path, {"JMAPD_WORKERS": "2"}, ["--lmtp", f"unix:{path}"])
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(str(path))
        file = sock.makefile("rb")
        assert file.readline().startswith(b"220")
        sock.sendall(b"LHLO t\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<sock@example.com>\r\nDATA\r\n")
        while not (line := file.readline()).startswith(b"354"):
            assert line, "the connection closed"
        sock.sendall(message("via-socket") + b".\r\n")
        assert file.readline().startswith(b"250 2.1.5")
        sock.close()
        client = server.client_with(("sock@example.com", "sock-secret"))
        assert len(find(client, "via-socket")) == 1
        assert path.stat().st_mode & 0o007 == 0
    finally:
        stop_server(server)


def test_concurrent_deliveries_are_each_stored_once(mail: Mail) -> None:
    """Deliveries that arrive together are committed together (group commit): every 250
    stands for exactly one stored message."""
    results: list[int] = []

    def connection(n: int) -> None:
        client = mail.lmtp()
        try:
            for i in range(10):
                assert client.command("MAIL FROM:<x@remote.example>")[0] == 250
                assert client.command("RCPT TO:<ann@example.com>")[0] == 250
                [(code, _)] = client.data(message(f"together-{n}-{i}"), 1)
                results.append(code)
        finally:
            client.close()

    threads = [threading.Thread(target=connection, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [250] * 80
    client = mail.clients["ann@example.com"]
    account, box = inbox(client)
    where = {"inMailbox": box, "subject": "together"}
    found = client.ok("Email/query", {"accountId": account, "filter": where,
                                      "calculateTotal": True})  # fmt: skip
    assert found["total"] == 80
