"""A real MTA in front (issue 12 item 7): Debian's Postfix, run by the test with a private
configuration, takes mail over SMTP and hands it to jmapd over LMTP, as docs/mail-flow.md
sets it up. Mail sent to Postfix appears in the Inbox with a push; an unknown recipient is
refused by jmapd at RCPT and bounced by Postfix. On both backends."""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.conformance.test_eventsource import Events
from tests.conformance.test_lmtp import find, inbox
from tests.conftest import Client, free_port, jmapd, start_server, stop_server

POSTFIX = shutil.which("postfix") or ("/usr/sbin/postfix" if Path("/usr/sbin/postfix").exists()
                                      else None)  # fmt: skip
USER, PASSWORD = "pat@example.com", "pat-secret"


class Postfix:
    def __init__(self, lmtp_port: int) -> None:
        # Not under pytest's private temporary directory: Postfix's daemons run as the
        # postfix user and must reach the queue.
        self.root = Path(tempfile.mkdtemp(prefix="jmapd-postfix-"))
        self.root.chmod(0o755)
        self.port = free_port()
        conf, data = self.root / "conf", self.root / "data"
        conf.mkdir()
        data.mkdir()
        (self.root / "queue").mkdir()
        shutil.chown(data, "postfix")
        master = Path("/etc/postfix/master.cf")
        if not master.exists():
            master = Path("/usr/share/postfix/master.cf.dist")
        lines = [f"127.0.0.1:{self.port} inet" + line[len("smtp      inet"):]
                 if line.startswith("smtp      inet") else line
                 for line in master.read_text().splitlines()]  # fmt: skip
        (conf / "master.cf").write_text("\n".join(lines) + "\n")
        (conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.root}/queue
data_directory = {data}
myhostname = mx.test.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
virtual_mailbox_domains = example.com
virtual_transport = lmtp:inet:127.0.0.1:{lmtp_port}
default_transport = discard
maillog_file_prefixes = {self.root}
maillog_file = {self.root}/maillog
""")
        self.conf = conf
        try:
            self._start()
        except BaseException:
            subprocess.run([str(POSTFIX), "-c", str(conf), "stop"], capture_output=True,
                           check=False)  # fmt: skip
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _start(self) -> None:
        self._postfix("start")
        deadline = time.monotonic() + 20
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as probe:
                    probe.noop()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("Postfix did not start: " + self.log()) from None
                time.sleep(0.2)

    def _postfix(self, command: str) -> None:
        assert POSTFIX is not None
        result = subprocess.run([POSTFIX, "-c", str(self.conf), command], capture_output=True,
                                text=True, check=False)  # fmt: skip
        assert result.returncode == 0, result

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        self._postfix("stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def relay(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Postfix, Client]]:
    if POSTFIX is None or os.geteuid() != 0:  # never skipped: a real MTA is the peer here
        pytest.fail("Postfix, run as root, is needed (scripts/test installs Debian's postfix "
                    "as root; else apt-get install postfix)")  # fmt: skip
    data = tmp_path_factory.mktemp("postfix-jmapd")
    jmapd(data, "account", "add", USER, "--password", PASSWORD)
    lmtp_port = free_port()
    server = start_server(data, args=["--lmtp", f"127.0.0.1:{lmtp_port}"])
    postfix = Postfix(lmtp_port)
    try:
        yield postfix, server.client_with((USER, PASSWORD))
    finally:
        postfix.stop()
        stop_server(server)


def send(postfix: Postfix, to: str, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "Sender <sender@remote.example>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Sent through Postfix.\n")
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as smtp:
        smtp.send_message(message)


def test_mail_through_postfix_arrives_with_a_push(relay: tuple[Postfix, Client]) -> None:
    postfix, client = relay
    account, _ = inbox(client)
    url = client.session()["eventSourceUrl"].replace("{types}", "EmailDelivery")
    url = url.replace("{closeafter}", "state").replace("{ping}", "0")
    with client.http.stream("GET", url, timeout=httpx.Timeout(10, read=20)) as r:
        events = Events(r)
        assert events.next()[0] == "comment"
        send(postfix, USER, "through-postfix")
        name, data = events.next()
    assert name == "state" and list(data["changed"][account]) == ["EmailDelivery"]
    [email] = find(client, "through-postfix")
    assert email["header:Delivered-To:asText"] == USER
    assert email["header:Return-Path"] == " <sender@remote.example>"
    assert "status=sent (250 2.1.5" in postfix.log()


def test_postfix_bounces_an_unknown_recipient(relay: tuple[Postfix, Client]) -> None:
    postfix, _ = relay
    send(postfix, "nobody@example.com", "to-nobody")
    deadline = time.monotonic() + 20
    while "status=bounced" not in postfix.log():
        assert time.monotonic() < deadline, postfix.log()
        time.sleep(0.2)
    bounced = [line for line in postfix.log().splitlines() if "status=bounced" in line]
    assert "to=<nobody@example.com>" in bounced[0]
    assert "550 5.1.1" in bounced[0] and "in reply to RCPT TO command" in bounced[0]
