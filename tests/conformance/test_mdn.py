"""MDN (RFC 9007, issue 12 item 6): MDN/send builds an RFC 8098 report and sends it through
the outbound queue, to a smarthost that is an aiosmtpd server in the test recording the exact
envelope and bytes, or to a local account; MDN/parse reads such reports back. On both
backends."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, MIMEPart
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conformance.test_submission import Sink, identity, mailboxes, wait_for
from tests.conftest import CORE, MAIL, Client, Server, free_port, jmapd, start_server, stop_server

SUBMISSION = "urn:ietf:params:jmap:submission"
MDN = "urn:ietf:params:jmap:mdn"
USING = [CORE, MAIL, SUBMISSION, MDN]
USERS = {"sam@example.com": "sam-secret", "tess@example.com": "tess-secret"}
DISPLAYED = {"actionMode": "manual-action", "sendingMode": "mdn-sent-manually",
             "type": "displayed"}  # fmt: skip
TEXT = ("This receipt shows that the email has been displayed on your recipient's computer. "
        "There is no guarantee it has been read or understood.")  # fmt: skip


@dataclass
class CountingSink(Sink):
    """The smarthost, also noting every RCPT it is asked (those it refuses too)."""

    attempts: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        self.attempts.append(address)
        return await super().handle_RCPT(server, session, envelope, address, options)


@dataclass
class World:
    server: Server
    sink: CountingSink
    clients: dict[str, Client]

    def user(self, name: str) -> tuple[Client, str]:
        """The user's client and account."""
        client = self.clients[name]
        return client, str(client.session()["primaryAccounts"][MAIL])


@pytest.fixture(scope="module")
def mdn(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("mdn")
    for name, password in USERS.items():
        jmapd(data, "account", "add", name, "--password", password)
    sink = CountingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    server = start_server(data, {
        "JMAPD_SMARTHOST": f"127.0.0.1:{controller.port}", "JMAPD_SMARTHOST_TLS": "none",
        "JMAPD_QUEUE_RETRY": "1",
    })  # fmt: skip
    clients = {name: server.client_with((name, pw)) for name, pw in USERS.items()}
    try:
        yield World(server, sink, clients)
    finally:
        stop_server(server)
        controller.stop()


def call(client: Client, name: str, args: dict[str, Any], using: list[str] = USING) -> list[Any]:
    return list(client.request([[name, args, "c0"]], using)["methodResponses"])


def ok(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    responses = call(client, name, args)
    assert responses[0][0] == name, responses
    return dict(responses[0][1])


def upload(client: Client, account: str, data: bytes) -> str:
    url = client.session()["uploadUrl"].replace("{accountId}", account)
    r = client.http.post(url, content=data, headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 201, r.text
    return str(r.json()["blobId"])


def original(message_id: str, subject: str, sender: str = "rita@remote.example",
             to: str = "sam@example.com", notify: str | None = "") -> bytes:  # fmt: skip
    """A message as it arrived; `notify` "" asks the sender for an MDN, None asks nobody."""
    dnt = f"Disposition-Notification-To: {notify or sender}\r\n" if notify is not None else ""
    return (f"From: Rita <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Tue, 19 Sep 1995 23:01:00 +0000\r\nMessage-ID: <{message_id}>\r\n{dnt}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
            "Will you?\r\n").encode()  # fmt: skip


def receive(client: Client, account: str, raw: bytes, role: str = "inbox") -> str:
    """The message imported into the mailbox of that role: its Email id."""
    blob = upload(client, account, raw)
    box = mailboxes(client, account)[role]
    done = ok(client, "Email/import", {"accountId": account, "emails": {
        "m": {"blobId": blob, "mailboxIds": {box: True}}}})  # fmt: skip
    return str(done["created"]["m"]["id"])


def send(client: Client, account: str, email_id: str, **fields: Any) -> list[Any]:
    """MDN/send of one MDN ("k1") for the Email, setting $mdnsent after it."""
    who = fields.pop("identityId", None) or identity(client, account, "sam@example.com")
    return call(client, "MDN/send", {
        "accountId": account, "identityId": who,
        "send": {"k1": {"forEmailId": email_id, "disposition": DISPLAYED, **fields}},
        "onSuccessUpdateEmail": {"#k1": {"keywords/$mdnsent": True}},
    })  # fmt: skip


def keywords(client: Client, account: str, email_id: str) -> dict[str, bool]:
    got = ok(client, "Email/get", {"accountId": account, "ids": [email_id],
                                   "properties": ["keywords"]})  # fmt: skip
    return dict(got["list"][0]["keywords"])


def fields_of(part: MIMEPart) -> list[tuple[str, str]]:
    """The fields of a message/disposition-notification part, as written."""
    fields = part.get_payload(0)
    assert isinstance(fields, EmailMessage)
    return [(k, str(v)) for k, v in fields.items()]


# -- the capability (§1.3) ------------------------------------------------------------------------


def test_the_capability_is_an_empty_object_in_the_session_and_the_account(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    session = sam.session()
    assert session["capabilities"][MDN] == {}
    assert session["accounts"][account]["accountCapabilities"][MDN] == {}


def test_the_methods_need_the_capability_in_using(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    parse = call(sam, "MDN/parse", {"accountId": account, "blobIds": []}, [CORE, MAIL])
    assert parse[0][0] == "error" and parse[0][1]["type"] == "unknownMethod"
    # §2.1: MDN/send needs mail too, for the Identity and the implicit Email/set
    email_id = receive(sam, account, original("using@remote.example", "Using"))
    sent = call(sam, "MDN/send", {"accountId": account, "identityId": "x", "send": {},
                                  "onSuccessUpdateEmail": None}, [CORE, MDN])  # fmt: skip
    assert sent[0][0] == "error" and sent[0][1]["type"] == "unknownMethod"
    assert keywords(sam, account, email_id) == {}


# -- MDN/send (§2.1) ------------------------------------------------------------------------------


def test_an_mdn_goes_to_the_disposition_notification_to_address(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    email_id = receive(sam, account, original("199509192301.23456@example.org",
                                              "World domination"))  # fmt: skip
    responses = send(sam, account, email_id, subject="Read receipt for: World domination",
                     textBody=TEXT, reportingUA="joes-pc.cs.example.com; Foomail 97.1",
                     extensionFields={"X-Example": "example.com"})  # fmt: skip
    # §3.1: what the client did not give, then the implicit Email/set with the same call id
    assert responses[0] == ["MDN/send", {"accountId": account, "notSent": None, "sent": {"k1": {
        "finalRecipient": "rfc822; sam@example.com",
        "originalMessageId": "<199509192301.23456@example.org>",
        "includeOriginalMessage": False, "mdnGateway": None, "originalRecipient": None,
        "error": None}}}, "c0"]  # fmt: skip
    assert responses[1][0] == "Email/set" and responses[1][2] == "c0"
    assert list(responses[1][1]["updated"]) == [email_id]
    assert keywords(sam, account, email_id) == {"$mdnsent": True}
    got = wait_for(lambda: mdn.sink.to("rita@remote.example"))
    assert len(got) == 1
    assert got[0].mail_from == "<>"  # RFC 8098 §3: the null reverse path
    message = email.message_from_bytes(got[0].content, policy=policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "disposition-notification"
    assert str(message["From"]) == "sam@example.com"
    assert str(message["To"]) == "rita@remote.example"
    assert str(message["Subject"]) == "Read receipt for: World domination"
    assert str(message["References"]) == "<199509192301.23456@example.org>"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/disposition-notification",
    ]
    assert parts[0].get_content().rstrip("\r\n") == TEXT
    assert fields_of(parts[1]) == [
        ("Reporting-UA", "joes-pc.cs.example.com; Foomail 97.1"),
        ("Final-Recipient", "rfc822; sam@example.com"),
        ("Original-Message-ID", "<199509192301.23456@example.org>"),
        ("Disposition", "manual-action/MDN-sent-manually; displayed"),
        ("X-Example", "example.com"),
    ]


def test_a_second_mdn_for_the_email_is_mdn_already_sent(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    email_id = receive(sam, account, original("twice@remote.example", "Twice",
                                              sender="twice@remote.example"))  # fmt: skip
    first = send(sam, account, email_id)
    assert "k1" in first[0][1]["sent"]
    again = send(sam, account, email_id)
    # §3.1: no Email/set follows when nothing was sent
    assert again == [["MDN/send", {"accountId": account, "sent": None, "notSent": {"k1": {
        "type": "mdnAlreadySent", "description": "$mdnsent keyword is already present"}}},
        "c0"]]  # fmt: skip
    wait_for(lambda: mdn.sink.to("twice@remote.example"))
    assert len(mdn.sink.to("twice@remote.example")) == 1


def test_the_defaults_and_the_original_message(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    raw = original("whole@remote.example", "Whole", sender="whole@remote.example")
    email_id = receive(sam, account, raw)
    disposition = {**DISPLAYED, "actionMode": "automatic-action",
                   "sendingMode": "mdn-sent-automatically", "type": "processed"}  # fmt: skip
    sent = send(sam, account, email_id, includeOriginalMessage=True, disposition=disposition)
    text = 'The message to sam@example.com with the subject "Whole" has been processed.\n'
    assert sent[0][1]["sent"]["k1"] == {
        "subject": "Return receipt (processed): Whole", "textBody": text,
        "reportingUA": None, "extensionFields": None, "finalRecipient": "rfc822; sam@example.com",
        "originalMessageId": "<whole@remote.example>", "mdnGateway": None,
        "originalRecipient": None, "error": None,
    }  # fmt: skip
    got = wait_for(lambda: mdn.sink.to("whole@remote.example"))
    message = email.message_from_bytes(got[0].content, policy=policy.default)
    assert str(message["Auto-Submitted"]) == "auto-replied"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/disposition-notification", "message/rfc822"]  # fmt: skip
    assert dict(fields_of(parts[1]))["Disposition"] == (
        "automatic-action/MDN-sent-automatically; processed")  # fmt: skip
    returned = parts[2].get_payload(0)
    assert isinstance(returned, EmailMessage)
    assert str(returned["Message-ID"]) == "<whole@remote.example>"
    assert returned.get_content() == "Will you?\r\n"


def test_an_mdn_to_a_local_address_is_delivered_and_parsed_there(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    tess, theirs = mdn.user("tess@example.com")
    raw = original("local@example.com", "Local", sender="tess@example.com")
    sent_id = receive(tess, theirs, raw, role="sent")
    email_id = receive(sam, account, raw)
    assert "k1" in send(sam, account, email_id)[0][1]["sent"]
    inbox = mailboxes(tess, theirs)["inbox"]

    def arrived() -> list[str]:
        found = ok(tess, "Email/query", {"accountId": theirs, "filter": {
            "inMailbox": inbox, "subject": "Return receipt"}})["ids"]  # fmt: skip
        return list(found)

    ids = wait_for(arrived)
    blob = ok(tess, "Email/get", {"accountId": theirs, "ids": ids,
                                  "properties": ["blobId"]})["list"][0]["blobId"]  # fmt: skip
    parsed = ok(tess, "MDN/parse", {"accountId": theirs, "blobIds": [blob]})
    assert parsed["parsed"][blob]["forEmailId"] == sent_id  # §2.2: the message it is about
    assert parsed["parsed"][blob]["finalRecipient"] == "rfc822; sam@example.com"
    assert "queued message failed" not in mdn.server.log()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"finalRecipient": "rfc822; boss@example.com"}, "forbiddenFrom"),  # RFC 9007 §5
        ({"finalRecipient": "sam@example.com"}, "invalidProperties"),
        ({"disposition": {**DISPLAYED, "type": "read"}}, "invalidProperties"),
        ({"originalMessageId": "<mine@example.com>"}, "invalidProperties"),  # server-set
        ({"extension": {"X-A": "b"}}, "invalidProperties"),
    ],
)
def test_what_an_mdn_may_not_be(mdn: World, fields: dict[str, Any], error: str) -> None:
    sam, account = mdn.user("sam@example.com")
    email_id = receive(sam, account, original(f"bad-{error}@remote.example", "Bad"))
    responses = send(sam, account, email_id, **fields)
    assert len(responses) == 1
    assert responses[0][1]["notSent"]["k1"]["type"] == error
    assert keywords(sam, account, email_id) == {}


def test_an_email_not_found_or_asking_nothing_is_not_found(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    assert send(sam, account, "nosuchemail")[0][1]["notSent"]["k1"]["type"] == "notFound"
    silent = receive(sam, account, original("silent@remote.example", "Silent", notify=None))
    # §2.1: notFound also for an Email without a valid Disposition-Notification-To
    assert send(sam, account, silent)[0][1]["notSent"]["k1"]["type"] == "notFound"
    junk = receive(sam, account, original("junk@remote.example", "Junk", notify="not an address"))
    assert send(sam, account, junk)[0][1]["notSent"]["k1"]["type"] == "notFound"


def test_the_arguments_mdn_send_refuses(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    email_id = receive(sam, account, original("args@remote.example", "Args"))
    # §2.1: an unknown identity, and an MDN/send that would not set $mdnsent
    unknown = send(sam, account, email_id, identityId="nosuchidentity")
    assert unknown[0][0] == "error" and unknown[0][1]["type"] == "invalidArguments"
    who = identity(sam, account, "sam@example.com")
    for patch in (None, {"#k1": {"keywords/$seen": True}}, {"#k2": {"keywords/$mdnsent": True}}):
        refused = call(sam, "MDN/send", {"accountId": account, "identityId": who,
                                         "send": {"k1": {"forEmailId": email_id,
                                                         "disposition": DISPLAYED}},
                                         "onSuccessUpdateEmail": patch})  # fmt: skip
        assert refused[0][0] == "error" and refused[0][1]["type"] == "invalidArguments"
    assert keywords(sam, account, email_id) == {}


# -- MDN/parse (§2.2) ------------------------------------------------------------------------------

EXAMPLE = (  # the MDN of the §3.3 sample, as a message
    b"From: John <john@example.com>\r\nTo: joe@example.com\r\n"
    b"Subject: Read receipt for: World domination\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/report; report-type=disposition-notification;\r\n"
    b' boundary="RAA14128"\r\n'
    b"\r\n--RAA14128\r\nContent-Type: text/plain\r\n\r\n"
    b"This receipt shows that the email has been displayed on your recipient's computer. "
    b"There is no\r\nguarantee it has been read or understood.\r\n"
    b"\r\n--RAA14128\r\nContent-Type: message/disposition-notification\r\n\r\n"
    b"Reporting-UA: joes-pc.cs.example.com; Foomail 97.1\r\n"
    b"Final-Recipient: rfc822; john@example.com\r\n"
    b"Original-Message-ID: <199509192301.23456@example.org>\r\n"
    b"Disposition: Manual-action/MDN-sent-manually;\r\n displayed\r\n"
    b"\r\n--RAA14128--\r\n"
)  # fmt: skip


def test_mdn_parse_reads_the_rfcs_example(mdn: World) -> None:
    tess, theirs = mdn.user("tess@example.com")
    sent = receive(tess, theirs, original("199509192301.23456@example.org", "World domination",
                                          sender="joe@example.com", to="john@example.com"),
                   role="sent")  # fmt: skip
    blob = upload(tess, theirs, EXAMPLE)
    parsed = ok(tess, "MDN/parse", {"accountId": theirs, "blobIds": [blob]})
    assert parsed == {"accountId": theirs, "notParsable": None, "notFound": None, "parsed": {
        blob: {
            "forEmailId": sent,
            "subject": "Read receipt for: World domination",
            "textBody": "This receipt shows that the email has been displayed on your "
                        "recipient's computer. There is no\nguarantee it has been read or "
                        "understood.",
            "reportingUA": "joes-pc.cs.example.com; Foomail 97.1",
            # §2: lowercase, whatever the case of the field
            "disposition": DISPLAYED,
            "finalRecipient": "rfc822; john@example.com",
            "originalMessageId": "<199509192301.23456@example.org>",
            "includeOriginalMessage": False, "mdnGateway": None, "originalRecipient": None,
            "error": None, "extensionFields": None,
        }}}  # fmt: skip


def test_mdn_parse_of_what_is_no_mdn(mdn: World) -> None:
    tess, theirs = mdn.user("tess@example.com")
    plain = upload(tess, theirs, original("plain@remote.example", "Plain"))
    broken = upload(tess, theirs, EXAMPLE.replace(b"Manual-action/", b"Manual-action "))
    parsed = ok(tess, "MDN/parse", {"accountId": theirs,
                                    "blobIds": [plain, broken, "nosuchblob", plain]})  # fmt: skip
    assert parsed == {"accountId": theirs, "parsed": None, "notParsable": [plain, broken],
                      "notFound": ["nosuchblob"]}  # fmt: skip


def test_mdn_parse_finds_no_blob_of_another_account(mdn: World) -> None:
    sam, account = mdn.user("sam@example.com")
    tess, theirs = mdn.user("tess@example.com")
    blob = upload(tess, theirs, EXAMPLE.replace(b"Foomail", b"Tessmail"))
    assert ok(sam, "MDN/parse", {"accountId": account, "blobIds": [blob]})["notFound"] == [blob]


def test_the_queue_retries_and_refuses_an_mdn_without_a_submission(mdn: World) -> None:
    """The queue row names no EmailSubmission: a 4xx is tried again, a 5xx is final and,
    the return path being null, reported to nobody (RFC 3464 §2)."""
    sam, account = mdn.user("sam@example.com")
    sink = mdn.sink
    sink.rules["later@remote.example"] = ["450 4.2.0 Busy", "250 2.1.5 OK"]
    sink.rules["refuser@remote.example"] = ["550 5.1.1 No such user"]
    for address in ("later@remote.example", "refuser@remote.example"):
        email_id = receive(sam, account, original(f"q-{address}", "Queue", sender=address))
        assert "k1" in send(sam, account, email_id)[0][1]["sent"]
    assert len(wait_for(lambda: sink.to("later@remote.example"))) == 1
    wait_for(lambda: sink.attempts.count("refuser@remote.example"))
    time.sleep(2.5)  # a retry would come after queue_retry (1 s)
    assert sink.attempts.count("refuser@remote.example") == 1
    inbox = mailboxes(sam, account)["inbox"]
    ids = ok(sam, "Email/query", {"accountId": account, "filter": {
        "inMailbox": inbox, "subject": "Undelivered"}})["ids"]  # fmt: skip
    assert ids == []
    assert "queued message failed" not in mdn.server.log()
