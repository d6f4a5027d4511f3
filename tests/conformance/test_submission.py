"""Identity (RFC 8621 §6) and EmailSubmission (§7) through the outbound queue (issue 12 items
2-4): a real jmapd sends through a smarthost that is an aiosmtpd server in the test, which
records the exact envelope and bytes it gets and answers each recipient as the test asks.
On both backends."""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from typing import Any

import dkim
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import CORE, MAIL, Client, Server, free_port, jmapd, start_server, stop_server
from tests.test_dkim import dns

SUBMISSION = "urn:ietf:params:jmap:submission"
USING = [CORE, MAIL, SUBMISSION]
USERS = {"sam@example.com": "sam-secret", "tess@example.com": "tess-secret"}
MAX_RECIPIENTS = 5
MAX_MESSAGE = 150_000


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]


@dataclass
class Sink:
    """The smarthost: every message it accepted; per recipient, replies to give in turn
    (the last one again and again)."""

    received: list[Received] = field(default_factory=list)
    rules: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        with self.lock:
            rule = self.rules.get(address)
            reply = (rule.pop(0) if len(rule) > 1 else rule[0]) if rule else "250 2.1.5 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    envelope.mail_options,
                )
            )
        return "250 2.0.0 Ok: queued as 4F00D"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]


@dataclass
class Mail:
    server: Server
    sink: Sink
    record: str  # the DKIM record the command line printed
    clients: dict[str, Client]

    def account(self, name: str) -> str:
        return str(self.clients[name].session()["primaryAccounts"][MAIL])


@pytest.fixture(scope="module")
def mail(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mail]:
    data = tmp_path_factory.mktemp("submission")
    for name, password in USERS.items():
        jmapd(data, "account", "add", name, "--password", password)
    jmapd(data, "account", "alias", "add", "sam@example.com", "samuel@example.org")
    record = jmapd(data, "dkim", "generate", "example.com", "--selector", "s1")
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    server = start_server(data, {
        "JMAPD_SMARTHOST": f"127.0.0.1:{controller.port}", "JMAPD_SMARTHOST_TLS": "none",
        "JMAPD_QUEUE_RETRY": "1", "JMAPD_MAX_RECIPIENTS": str(MAX_RECIPIENTS),
        "JMAPD_MAX_MESSAGE_SIZE": str(MAX_MESSAGE),
    })  # fmt: skip
    clients = {name: server.client_with((name, pw)) for name, pw in USERS.items()}
    try:
        yield Mail(server, sink, record, clients)
    finally:
        stop_server(server)
        controller.stop()


def call(client: Client, name: str, args: dict[str, Any]) -> list[Any]:
    return client.request([[name, args, "c0"]], USING)["methodResponses"]


def ok(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    responses = call(client, name, args)
    assert responses[0][0] == name, responses
    return dict(responses[0][1])


def mailboxes(client: Client, account: str) -> dict[str, str]:
    boxes = ok(client, "Mailbox/get", {"accountId": account, "ids": None})["list"]
    return {m["role"]: m["id"] for m in boxes if m["role"]}


def identity(client: Client, account: str, address: str) -> str:
    found = ok(client, "Identity/get", {"accountId": account, "ids": None})["list"]
    return next(i["id"] for i in found if i["email"] == address and not i["mayDelete"])


def draft(client: Client, account: str, subject: str, **fields: Any) -> str:
    boxes = mailboxes(client, account)
    created = ok(client, "Email/set", {"accountId": account, "create": {"d": {
        "mailboxIds": {boxes["drafts"]: True}, "keywords": {"$draft": True},
        "from": [{"name": "Sam", "email": "sam@example.com"}],
        "to": [{"name": None, "email": "rita@remote.example"}],
        "subject": subject,
        "bodyValues": {"1": {"value": f"About {subject}.\n"}},
        "textBody": [{"partId": "1", "type": "text/plain"}],
        **fields,
    }}})  # fmt: skip
    assert "d" in (created["created"] or {}), created
    return str(created["created"]["d"]["id"])


def submit(client: Client, account: str, email_id: str, **fields: Any) -> list[Any]:
    who = identity(client, account, "sam@example.com")
    return call(client, "EmailSubmission/set", {"accountId": account, "create": {
        "s": {"identityId": who, "emailId": email_id, **fields}}})  # fmt: skip


def wait_for(what: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


def submission(client: Client, account: str, id: str) -> dict[str, Any]:
    found = ok(client, "EmailSubmission/get", {"accountId": account, "ids": [id]})["list"]
    return dict(found[0])


def settled(client: Client, account: str, id: str) -> dict[str, Any]:
    """The submission once no recipient is queued any more."""

    def done() -> dict[str, Any] | None:
        s = submission(client, account, id)
        queued = any(v["delivered"] == "queued" for v in s["deliveryStatus"].values())
        return None if queued else s

    return dict(wait_for(done))


# -- the capability and Identity ------------------------------------------------------------------


def test_the_submission_capability_is_in_the_users_own_account(mail: Mail) -> None:
    session = mail.clients["sam@example.com"].session()
    assert session["capabilities"][SUBMISSION] == {}
    account = session["primaryAccounts"][MAIL]
    assert session["primaryAccounts"][SUBMISSION] == account
    assert session["accounts"][account]["accountCapabilities"][SUBMISSION] == {
        "maxDelayedSend": 30 * 86400,
        "submissionExtensions": {"FUTURERELEASE": [str(30 * 86400)]},
    }


def test_each_address_has_an_identity_that_stays(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    found = ok(sam, "Identity/get", {"accountId": account, "ids": None})
    by_email = {i["email"]: i for i in found["list"]}
    assert set(by_email) >= {"sam@example.com", "samuel@example.org"}
    assert by_email["sam@example.com"] == {
        "id": by_email["sam@example.com"]["id"], "name": "", "email": "sam@example.com",
        "replyTo": None, "bcc": None, "textSignature": "", "htmlSignature": "",
        "mayDelete": False,
    }  # fmt: skip
    id = by_email["sam@example.com"]["id"]
    destroyed = ok(sam, "Identity/set", {"accountId": account, "destroy": [id]})
    assert destroyed["notDestroyed"][id]["type"] == "forbidden"


def test_identities_follow_the_aliases(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    state = ok(sam, "Identity/get", {"accountId": account, "ids": []})["state"]
    data = mail.server.data
    jmapd(data, "account", "alias", "add", "sam@example.com", "@sam.example")
    emails = wait_for(
        lambda: (
            {
                i["email"]: i["id"]
                for i in ok(sam, "Identity/get", {"accountId": account, "ids": None})["list"]
            }
            if ok(sam, "Identity/get", {"accountId": account, "ids": []})["state"] != state
            else None
        )
    )
    assert "*@sam.example" in emails
    changes = ok(sam, "Identity/changes", {"accountId": account, "sinceState": state})
    assert changes["created"] == [emails["*@sam.example"]]
    jmapd(data, "account", "alias", "remove", "sam@example.com", "@sam.example")
    after = ok(sam, "Identity/get", {"accountId": account, "ids": None})["list"]
    assert "*@sam.example" not in {i["email"] for i in after}


def test_identities_are_made_for_the_accounts_addresses_only(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    made = ok(sam, "Identity/set", {"accountId": account, "create": {
        "work": {"name": "Samuel", "email": "samuel@example.org",
                 "replyTo": [{"name": "Desk", "email": "desk@example.org"}],
                 "textSignature": "-- \nSam"},
        "other": {"email": "tess@example.com"},
        "bad": {"email": "sam@example.com", "bcc": [{"mail": "x"}]},
    }})  # fmt: skip
    assert made["created"]["work"]["mayDelete"] is True
    assert made["notCreated"]["other"]["type"] == "forbiddenFrom"
    assert made["notCreated"]["bad"]["type"] == "invalidProperties"
    assert made["notCreated"]["bad"]["properties"] == ["bcc"]
    id = made["created"]["work"]["id"]
    changed = ok(sam, "Identity/set", {"accountId": account, "update": {
        id: {"name": "Sam W", "email": "sam@example.com"}}})  # fmt: skip
    assert changed["notUpdated"][id]["type"] == "invalidProperties"
    assert changed["notUpdated"][id]["properties"] == ["email"]
    renamed = ok(sam, "Identity/set", {"accountId": account, "update": {id: {"name": "Sam W"}}})
    assert id in renamed["updated"]
    gone = ok(sam, "Identity/set", {"accountId": account, "destroy": [id]})
    assert gone["destroyed"] == [id]


# -- sending ---------------------------------------------------------------------------------------


def test_a_draft_is_sent_signed_without_bcc_and_moved_to_sent(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    boxes = mailboxes(sam, account)
    email_id = draft(sam, account, "Lunch", cc=[{"name": None, "email": "cy@remote.example"}],
                     bcc=[{"name": None, "email": "hidden@remote.example"}])  # fmt: skip
    responses = sam.request([["EmailSubmission/set", {
        "accountId": account,
        "create": {"k1": {"identityId": identity(sam, account, "sam@example.com"),
                          "emailId": email_id}},
        "onSuccessUpdateEmail": {"#k1": {f"mailboxIds/{boxes['drafts']}": None,
                                         f"mailboxIds/{boxes['sent']}": True,
                                         "keywords/$draft": None}},
    }, "0"]], USING)["methodResponses"]  # fmt: skip
    assert [r[0] for r in responses] == ["EmailSubmission/set", "Email/set"]
    assert [r[2] for r in responses] == ["0", "0"]
    created = responses[0][1]["created"]["k1"]
    assert responses[1][1]["updated"] == {email_id: None}
    sent = ok(sam, "Email/get", {"accountId": account, "ids": [email_id],
                                 "properties": ["mailboxIds", "keywords", "threadId"]})[
        "list"][0]  # fmt: skip
    assert sent["mailboxIds"] == {boxes["sent"]: True} and sent["keywords"] == {}
    got = wait_for(lambda: mail.sink.to("hidden@remote.example"))
    assert len(got) == 1
    out = got[0]
    assert out.mail_from == "sam@example.com"
    assert sorted(out.rcpt_tos) == ["cy@remote.example", "hidden@remote.example",
                                    "rita@remote.example"]  # fmt: skip
    assert b"\r\nBcc:" not in out.content and not out.content.startswith(b"Bcc:")
    assert b"hidden@remote.example" not in out.content
    signature = out.content.split(b"\r\n\r\n")[0].split(b"\r\nMessage-ID")[0]
    assert out.content.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert b" d=example.com;" in signature and b" s=s1;" in signature
    assert dkim.verify(out.content, dnsfunc=dns(mail.record))
    parsed = email.message_from_bytes(out.content, policy=policy.default)
    assert parsed["Subject"] == "Lunch" and parsed["To"] == "rita@remote.example"
    done = settled(sam, account, created["id"])
    assert done["undoStatus"] == "final"
    assert done["threadId"] == sent["threadId"] and done["emailId"] == email_id
    assert done["deliveryStatus"]["rita@remote.example"] == {
        "smtpReply": "250 2.0.0 Ok: queued as 4F00D", "delivered": "unknown",
        "displayed": "unknown"}  # fmt: skip
    assert done["envelope"] is None or done["envelope"]["mailFrom"]["email"] == "sam@example.com"
    assert done["dsnBlobIds"] == [] and done["mdnBlobIds"] == []


def test_the_envelope_given_is_the_one_used(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    email_id = draft(sam, account, "Envelope")
    envelope = {"mailFrom": {"email": "sam@example.com", "parameters": None},
                "rcptTo": [{"email": "only@remote.example", "parameters": None}]}  # fmt: skip
    responses = submit(sam, account, email_id, envelope=envelope)
    assert "s" in responses[0][1]["created"], responses
    got = wait_for(lambda: mail.sink.to("only@remote.example"))
    assert got[0].rcpt_tos == ["only@remote.example"]


def test_a_refused_recipient_fails_with_a_dsn_in_the_inbox(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    mail.sink.rules["nobody@remote.example"] = ["550-5.1.1 No such user here\r\n550 5.1.1 at all"]
    email_id = draft(sam, account, "Bounce", to=[{"name": None, "email": "nobody@remote.example"},
                                                 {"name": None,
                                                  "email": "rita@remote.example"}])  # fmt: skip
    id = submit(sam, account, email_id)[0][1]["created"]["s"]["id"]
    done = settled(sam, account, id)
    assert done["deliveryStatus"]["nobody@remote.example"] == {
        "smtpReply": "550 5.1.1 No such user here at all", "delivered": "no",
        "displayed": "unknown"}  # fmt: skip
    assert done["deliveryStatus"]["rita@remote.example"]["delivered"] == "unknown"
    assert len(done["dsnBlobIds"]) == 1
    inbox = mailboxes(sam, account)["inbox"]
    ids = ok(sam, "Email/query", {"accountId": account, "filter": {
        "inMailbox": inbox, "subject": "Undelivered Mail Returned to Sender"}})["ids"]  # fmt: skip
    reports = ok(sam, "Email/get", {"accountId": account, "ids": ids,
                                    "properties": ["blobId", "bodyStructure"]})["list"]  # fmt: skip
    report = next(r for r in reports if r["blobId"] == done["dsnBlobIds"][0])
    assert report["bodyStructure"]["type"] == "multipart/report"
    assert [p["type"] for p in report["bodyStructure"]["subParts"]] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    raw = sam.http.get(f"/jmap/download/{account}/{report['blobId']}/dsn.eml").content
    assert b"Final-Recipient: rfc822; nobody@remote.example" in raw
    assert b"Action: failed" in raw and b"Status: 5.1.1" in raw


def test_a_recipient_deferred_is_tried_again(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    mail.sink.rules["busy@remote.example"] = ["451 4.7.1 Try again later", "250 2.1.5 OK"]
    email_id = draft(sam, account, "Later", to=[{"name": None, "email": "busy@remote.example"}])
    id = submit(sam, account, email_id)[0][1]["created"]["s"]["id"]
    first = wait_for(
        lambda: (
            submission(sam, account, id)["deliveryStatus"]["busy@remote.example"][
                "smtpReply"
            ].startswith("451")
            or mail.sink.to("busy@remote.example")
        )
    )
    assert first
    done = settled(sam, account, id)
    assert done["deliveryStatus"]["busy@remote.example"]["delivered"] == "unknown"
    assert len(mail.sink.to("busy@remote.example")) == 1


def test_a_local_recipient_gets_it_in_the_inbox_exactly_once(mail: Mail) -> None:
    sam, tess = mail.clients["sam@example.com"], mail.clients["tess@example.com"]
    account, theirs = mail.account("sam@example.com"), mail.account("tess@example.com")
    email_id = draft(sam, account, "Neighbour", to=[{"name": None, "email": "tess@example.com"}])
    id = submit(sam, account, email_id)[0][1]["created"]["s"]["id"]
    done = settled(sam, account, id)
    assert done["deliveryStatus"]["tess@example.com"] == {
        "smtpReply": "250 2.1.5 Delivered",
        "delivered": "yes",
        "displayed": "unknown",
    }
    inbox = mailboxes(tess, theirs)["inbox"]
    ids = ok(tess, "Email/query", {"accountId": theirs,
                                   "filter": {"inMailbox": inbox,
                                              "subject": "Neighbour"}})["ids"]  # fmt: skip
    assert len(ids) == 1
    got = ok(tess, "Email/get", {"accountId": theirs, "ids": ids, "properties": [
        "header:Delivered-To:asText", "header:Return-Path", "from"]})["list"][0]  # fmt: skip
    assert got["header:Delivered-To:asText"] == "tess@example.com"
    assert got["header:Return-Path"] == " <sam@example.com>"
    assert mail.sink.to("tess@example.com") == []


def test_a_held_submission_can_be_canceled_and_is_never_sent(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    email_id = draft(sam, account, "Undo", to=[{"name": None, "email": "undo@remote.example"}])
    envelope = {"mailFrom": {"email": "sam@example.com", "parameters": {"HOLDFOR": "2"}},
                "rcptTo": [{"email": "undo@remote.example", "parameters": None}]}  # fmt: skip
    before = time.time()
    id = submit(sam, account, email_id, envelope=envelope)[0][1]["created"]["s"]["id"]
    held = submission(sam, account, id)
    assert held["undoStatus"] == "pending"
    jmapd(mail.server.data, "check")  # the queued row's blob reference is counted
    send_at = time.mktime(time.strptime(held["sendAt"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before + 1 <= send_at <= before + 4
    canceled = ok(sam, "EmailSubmission/set", {"accountId": account, "update": {
        id: {"undoStatus": "canceled"}}})  # fmt: skip
    assert id in canceled["updated"], canceled
    time.sleep(3.5)
    assert mail.sink.to("undo@remote.example") == []
    after = submission(sam, account, id)
    assert after["undoStatus"] == "canceled"
    assert after["deliveryStatus"]["undo@remote.example"]["delivered"] == "no"


def test_a_sent_submission_cannot_be_unsent(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    email_id = draft(sam, account, "Gone", to=[{"name": None, "email": "gone@remote.example"}])
    id = submit(sam, account, email_id)[0][1]["created"]["s"]["id"]
    settled(sam, account, id)
    tried = ok(sam, "EmailSubmission/set", {"accountId": account, "update": {
        id: {"undoStatus": "canceled"}}})  # fmt: skip
    assert tried["notUpdated"][id]["type"] == "cannotUnsend"
    final = ok(sam, "EmailSubmission/set", {"accountId": account, "update": {
        id: {"undoStatus": "pending"}}})  # fmt: skip
    assert final["notUpdated"][id]["type"] == "invalidProperties"


def test_every_set_error_of_a_create(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    who = identity(sam, account, "sam@example.com")
    ok_id = draft(sam, account, "Errors")
    not_mine = draft(
        sam, account, "Forged", **{"from": [{"name": None, "email": "boss@example.com"}]}
    )
    no_from = draft(sam, account, "Nobody", **{"from": None})
    nobody = draft(sam, account, "Empty", to=None)
    crowd = draft(sam, account, "Crowd", to=[{"name": None, "email": f"p{i}@remote.example"}
                                             for i in range(MAX_RECIPIENTS + 1)])  # fmt: skip
    large = draft(sam, account, "Large", bodyValues={"1": {"value": "x" * (MAX_MESSAGE + 10)}})
    env = {"mailFrom": {"email": "sam@example.com", "parameters": None},
           "rcptTo": [{"email": "not an address", "parameters": None}]}  # fmt: skip
    forged_from = {"mailFrom": {"email": "tess@example.com", "parameters": None},
                   "rcptTo": [{"email": "a@remote.example", "parameters": None}]}  # fmt: skip
    unknown_param = {"mailFrom": {"email": "sam@example.com", "parameters": {"XYZ": None}},
                     "rcptTo": [{"email": "a@remote.example", "parameters": None}]}  # fmt: skip
    made = ok(sam, "EmailSubmission/set", {"accountId": account, "create": {
        "noEmail": {"identityId": who, "emailId": "nosuchemail"},
        "noIdentity": {"identityId": "nosuchidentity", "emailId": ok_id},
        "forbiddenFrom": {"identityId": who, "emailId": not_mine},
        "invalidEmail": {"identityId": who, "emailId": no_from},
        "noRecipients": {"identityId": who, "emailId": nobody},
        "tooMany": {"identityId": who, "emailId": crowd},
        "tooLarge": {"identityId": who, "emailId": large},
        "invalidRecipients": {"identityId": who, "emailId": ok_id, "envelope": env},
        "forbiddenMailFrom": {"identityId": who, "emailId": ok_id, "envelope": forged_from},
        "unknownParameter": {"identityId": who, "emailId": ok_id, "envelope": unknown_param},
        "serverSet": {"identityId": who, "emailId": ok_id, "sendAt": "2030-01-01T00:00:00Z"},
    }})  # fmt: skip
    errors = made["notCreated"]
    assert made["created"] is None, made["created"]
    assert errors["noEmail"]["type"] == "invalidProperties"
    assert errors["noEmail"]["properties"] == ["emailId"]
    assert errors["noIdentity"]["properties"] == ["identityId"]
    assert errors["forbiddenFrom"]["type"] == "forbiddenFrom"
    assert errors["invalidEmail"]["type"] == "invalidEmail"
    assert errors["invalidEmail"]["properties"] == ["from"]
    assert errors["noRecipients"]["type"] == "noRecipients"
    assert errors["tooMany"]["type"] == "tooManyRecipients"
    assert errors["tooMany"]["maxRecipients"] == MAX_RECIPIENTS
    assert errors["tooLarge"]["type"] == "tooLarge"
    assert errors["tooLarge"]["maxSize"] == MAX_MESSAGE
    assert errors["invalidRecipients"]["type"] == "invalidRecipients"
    assert errors["invalidRecipients"]["invalidRecipients"] == ["not an address"]
    assert errors["forbiddenMailFrom"]["type"] == "forbiddenMailFrom"
    assert errors["unknownParameter"]["type"] == "invalidProperties"
    assert errors["unknownParameter"]["properties"] == ["envelope"]
    assert errors["serverSet"]["properties"] == ["sendAt"]


def test_the_envelope_comes_from_sender_then_from(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    email_id = draft(sam, account, "On behalf",
                     sender=[{"name": None, "email": "samuel@example.org"}],
                     to=[{"name": None, "email": "behalf@remote.example"}])  # fmt: skip
    who = identity(sam, account, "sam@example.com")
    made = ok(sam, "EmailSubmission/set", {"accountId": account, "create": {
        "s": {"identityId": who, "emailId": email_id}}})  # fmt: skip
    got = wait_for(lambda: mail.sink.to("behalf@remote.example"))
    # Sender is not this identity's address: the identity's is used (§7)
    assert got[0].mail_from == "sam@example.com"
    assert "s" in made["created"]


def test_submissions_are_queried_and_synced(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    state = ok(sam, "EmailSubmission/get", {"accountId": account, "ids": []})["state"]
    first = draft(sam, account, "Query one", to=[{"name": None, "email": "q@remote.example"}])
    second = draft(sam, account, "Query two", to=[{"name": None, "email": "q@remote.example"}])
    a = submit(sam, account, first)[0][1]["created"]["s"]["id"]
    b = submit(sam, account, second)[0][1]["created"]["s"]["id"]
    changes = ok(sam, "EmailSubmission/changes", {"accountId": account, "sinceState": state})
    assert set(changes["created"]) >= {a, b}
    found = ok(sam, "EmailSubmission/query", {"accountId": account,
                                              "filter": {"emailIds": [first, second]},
                                              "sort": [{"property": "emailId"}]})  # fmt: skip
    assert found["ids"] == sorted([a, b], key=lambda i: {a: first, b: second}[i])
    by_date = ok(sam, "EmailSubmission/query", {"accountId": account,
                                                "filter": {"emailIds": [first, second]},
                                                "sort": [{"property": "sentAt",
                                                          "isAscending": False}]})  # fmt: skip
    assert set(by_date["ids"]) == {a, b}
    none = ok(sam, "EmailSubmission/query", {"accountId": account,
                                             "filter": {"undoStatus": "canceled",
                                                        "emailIds": [first]}})  # fmt: skip
    assert none["ids"] == []


def test_destroying_a_submission_with_its_email(mail: Mail) -> None:
    sam = mail.clients["sam@example.com"]
    account = mail.account("sam@example.com")
    email_id = draft(sam, account, "Destroy", to=[{"name": None, "email": "d@remote.example"}])
    id = submit(sam, account, email_id)[0][1]["created"]["s"]["id"]
    settled(sam, account, id)
    responses = call(sam, "EmailSubmission/set", {"accountId": account, "destroy": [id],
                                                  "onSuccessDestroyEmail": [id]})  # fmt: skip
    assert [r[0] for r in responses] == ["EmailSubmission/set", "Email/set"]
    assert responses[0][1]["destroyed"] == [id]
    assert responses[1][1]["destroyed"] == [email_id]
    assert ok(sam, "Email/get", {"accountId": account, "ids": [email_id]})["notFound"] == [email_id]
