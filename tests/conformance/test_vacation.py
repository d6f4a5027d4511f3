"""VacationResponse (RFC 8621 §8) and its replies as RFC 3834 asks: mail comes in over
LMTP, replies leave through the outbound queue to a smarthost in the test, which records
exactly what it gets. On both backends."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conformance.test_lmtp import LMTPClient
from tests.conformance.test_submission import Received, Sink
from tests.conftest import CORE, MAIL, Client, Server, free_port, jmapd, start_server, stop_server

VACATION = "urn:ietf:params:jmap:vacationresponse"
USING = [CORE, MAIL, VACATION]
OWNER = "val@example.com"


class Setup:
    def __init__(self, server: Server, sink: Sink, lmtp: int) -> None:
        self.server, self.sink, self.lmtp_port = server, sink, lmtp
        self.client: Client = server.client_with((OWNER, "val-secret"))
        self.account = self.client.session()["primaryAccounts"][MAIL]

    def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        responses = self.client.request([[name, {"accountId": self.account, **args}, "c"]],
                                        USING)["methodResponses"]  # fmt: skip
        assert responses[0][0] == name, responses
        return dict(responses[0][1])

    def vacation(self, **changes: Any) -> dict[str, Any]:
        return self.call("VacationResponse/set", {"update": {"singleton": changes}})

    def deliver(self, sender: str, subject: str, headers: str = "", to: str = OWNER) -> None:
        message = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
                   f"Message-ID: <{subject.replace(' ', '.')}@remote.example>\r\n{headers}"
                   f"\r\nHello.\r\n").encode()  # fmt: skip
        client = LMTPClient(self.lmtp_port)
        try:
            assert client.command("LHLO test.example")[0] == 250
            assert client.command(f"MAIL FROM:<{sender}>")[0] == 250
            assert client.command(f"RCPT TO:<{OWNER}>")[0] == 250
            assert client.data(message, 1)[0][0] == 250
        finally:
            client.close()

    def replies_to(self, sender: str, wait: float = 3.0) -> list[Received]:
        """What reached the smarthost for `sender`, waiting a while (the queue looks every
        second) for one to arrive."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not self.sink.to(sender):
            time.sleep(0.05)
        return self.sink.to(sender)


@pytest.fixture(scope="module")
def setup(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    data = tmp_path_factory.mktemp("vacation")
    jmapd(data, "account", "add", OWNER, "--password", "val-secret")
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    lmtp = free_port()
    server = start_server(data, {"JMAPD_SMARTHOST": f"127.0.0.1:{controller.port}",
                                 "JMAPD_SMARTHOST_TLS": "none"},
                          ["--lmtp", f"127.0.0.1:{lmtp}"])  # fmt: skip
    try:
        yield Setup(server, sink, lmtp)
    finally:
        stop_server(server)
        controller.stop()


def test_the_singleton_is_there_and_stays(setup: Setup) -> None:
    got = setup.call("VacationResponse/get", {"ids": None})
    assert got["list"] == [{"id": "singleton", "isEnabled": False, "fromDate": None,
                            "toDate": None, "subject": None, "textBody": None,
                            "htmlBody": None}]  # fmt: skip
    made = setup.call("VacationResponse/set", {"create": {"x": {"isEnabled": True}},
                                               "destroy": ["singleton"]})  # fmt: skip
    assert made["notCreated"]["x"]["type"] == "singleton"
    assert made["notDestroyed"]["singleton"]["type"] == "singleton"
    session = setup.client.session()
    assert session["capabilities"][VACATION] == {}
    assert VACATION in session["accounts"][setup.account]["accountCapabilities"]


def test_mail_while_away_is_answered_once_per_sender(setup: Setup) -> None:
    changed = setup.vacation(isEnabled=True, subject="Away", textBody="Back on Monday.\n")
    assert "singleton" in changed["updated"]
    setup.deliver("ada@remote.example", "First note")
    replies = setup.replies_to("ada@remote.example")
    assert len(replies) == 1
    sent = replies[0]
    assert sent.mail_from == "<>" and sent.rcpt_tos == ["ada@remote.example"]
    message = email.message_from_bytes(sent.content, policy=policy.default)
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Subject"] == "Away"
    assert message["From"] == OWNER and message["To"] == "ada@remote.example"
    assert message["In-Reply-To"] == "<First.note@remote.example>"
    assert message.get_content().replace("\r\n", "\n") == "Back on Monday.\n"
    setup.deliver("ada@remote.example", "Second note")
    assert len(setup.replies_to("ada@remote.example", wait=2.5)) == 1


def test_a_changed_response_goes_to_everyone_again(setup: Setup) -> None:
    setup.vacation(isEnabled=True, subject=None, textBody=None,
                   htmlBody="<p>Gone <b>fishing</b></p>")  # fmt: skip
    setup.deliver("bea@remote.example", "Before")
    assert len(setup.replies_to("bea@remote.example")) == 1
    setup.vacation(htmlBody="<p>Still fishing</p>")
    setup.deliver("bea@remote.example", "After")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(setup.sink.to("bea@remote.example")) < 2:
        time.sleep(0.05)
    replies = setup.sink.to("bea@remote.example")
    assert len(replies) == 2
    message = email.message_from_bytes(replies[1].content, policy=policy.default)
    assert message["Subject"] == "Auto: After"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == "Still fishing"
    assert "<p>Still fishing</p>" in message.get_body(("html",)).get_content()


@pytest.mark.parametrize(("sender", "headers", "to"), [
    ("list@remote.example", "List-Id: <news.remote.example>\r\n", OWNER),
    ("bulk@remote.example", "Precedence: bulk\r\n", OWNER),
    ("robot@remote.example", "Auto-Submitted: auto-generated\r\n", OWNER),
    ("MAILER-DAEMON@remote.example", "", OWNER),
    ("owner-news@remote.example", "", OWNER),
    ("news-request@remote.example", "", OWNER),
    ("blind@remote.example", "", "someone@remote.example"),  # only in Bcc
])  # fmt: skip
def test_no_reply_to_lists_robots_or_blind_copies(setup: Setup, sender: str, headers: str,
                                                  to: str) -> None:  # fmt: skip
    setup.vacation(isEnabled=True, fromDate=None, toDate=None)
    setup.deliver(sender, f"Robot {sender}", headers, to)
    assert setup.replies_to(sender, wait=2.5) == []


def test_no_reply_outside_the_dates_or_when_disabled(setup: Setup) -> None:
    setup.vacation(isEnabled=True, fromDate="2099-01-01T00:00:00Z", toDate=None)
    setup.deliver("cal@remote.example", "Too early")
    setup.vacation(fromDate=None, toDate="2000-01-01T00:00:00Z")
    setup.deliver("dan@remote.example", "Too late")
    setup.vacation(isEnabled=False, toDate=None)
    setup.deliver("eve@remote.example", "Disabled")
    for sender in ("cal@remote.example", "dan@remote.example", "eve@remote.example"):
        assert setup.replies_to(sender, wait=1.2) == []
    bad = setup.vacation(fromDate="2030-01-02T00:00:00Z", toDate="2030-01-01T00:00:00Z")
    assert bad["notUpdated"]["singleton"]["properties"] == ["toDate"]
