"""RFC 8621 §3-4: Email/import, Email/get, Email/set (keywords, mailboxes, destroy),
Email/changes, Email/query, Thread/get, and the Mailbox counts they move (§2)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import notes
from tests.conftest import Client, Server

CORPUS = Path(__file__).parent.parent / "data" / "mail"


def account(server: Server) -> tuple[Client, str, dict[str, str]]:
    """A fresh account: its client, id, and mailbox ids by role."""
    client, account_id = notes.fresh_account(server, "mail")
    found = client.ok("Mailbox/get", {"accountId": account_id, "ids": None})["list"]
    return client, account_id, {m["role"]: m["id"] for m in found}


def upload(client: Client, account_id: str, data: bytes) -> str:
    url = client.session()["uploadUrl"].replace("{accountId}", account_id)
    r = client.http.post(url, content=data, headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 201, r.text
    return str(r.json()["blobId"])


def message(
    subject: str, msgid: str, *, refs: str = "", date: str = "Mon, 13 Oct 2014 14:00:00 +0000"
) -> bytes:
    references = f"References: {refs}\r\nIn-Reply-To: {refs.split()[-1]}\r\n" if refs else ""
    return (
        f"From: Joe <joe@example.com>\r\nTo: ann@example.com\r\nSubject: {subject}\r\n"
        f"Date: {date}\r\nMessage-ID: {msgid}\r\n{references}\r\nHello {subject}.\r\n"
    ).encode()


def import_(client: Client, account_id: str, mailbox: str, raw: bytes, **extra: Any) -> dict:
    blob_id = upload(client, account_id, raw)
    result = client.ok(
        "Email/import",
        {
            "accountId": account_id,
            "emails": {"e": {"blobId": blob_id, "mailboxIds": {mailbox: True}, **extra}},
        },
    )
    assert result["notCreated"] is None, result["notCreated"]
    return dict(result["created"]["e"])


def counts(client: Client, account_id: str, mailbox_id: str) -> tuple[int, int, int, int]:
    m = client.ok("Mailbox/get", {"accountId": account_id, "ids": [mailbox_id]})["list"][0]
    return m["totalEmails"], m["unreadEmails"], m["totalThreads"], m["unreadThreads"]


def test_import_and_get(server: Server) -> None:
    client, account_id, boxes = account(server)
    raw = (CORPUS / "mixed-attachments.eml").read_bytes()
    expected = json.loads((CORPUS / "mixed-attachments.json").read_text())
    created = import_(
        client,
        account_id,
        boxes["inbox"],
        raw,
        keywords={"$Seen": True},
        receivedAt="2020-01-02T03:04:05Z",
    )
    assert set(created) == {"id", "blobId", "threadId", "size"}
    assert created["size"] == len(raw)
    got = client.ok(
        "Email/get", {"accountId": account_id, "ids": [created["id"]], "fetchTextBodyValues": True}
    )
    email = got["list"][0]
    assert email["id"] == created["id"]
    assert (email["blobId"], email["threadId"]) == (created["blobId"], created["threadId"])
    assert email["mailboxIds"] == {boxes["inbox"]: True}
    assert email["keywords"] == {"$seen": True}  # §4.1.1: returned in lowercase
    assert email["receivedAt"] == "2020-01-02T03:04:05Z"
    for name, value in expected["properties"].items():
        assert email[name] == value, name
    assert email["hasAttachment"] is expected["hasAttachment"]
    assert email["preview"] == expected["preview"]
    assert [p["partId"] for p in email["attachments"]] == expected["attachments"]
    assert email["bodyValues"] == {
        k: v for k, v in expected["bodyValues"].items() if k in expected["textBody"]
    }
    # Every part's blob downloads its decoded content.
    pdf = next(p for p in email["attachments"] if p["partId"] == "2")
    url = client.session()["downloadUrl"]
    for var, value in {
        "accountId": account_id,
        "blobId": pdf["blobId"],
        "name": "a.pdf",
        "type": "application/pdf",
    }.items():
        url = url.replace("{" + var + "}", value)
    assert client.http.get(url).content == expected["partContent"]["2"].encode()
    # The raw message too, byte for byte.
    raw_url = url.replace(pdf["blobId"], email["blobId"])
    assert client.http.get(raw_url).content == raw


def test_import_errors(server: Server) -> None:
    client, account_id, boxes = account(server)
    blob_id = upload(client, account_id, message("x", "<err@example.com>"))
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"blobId": blob_id, "mailboxIds": {}}, ["mailboxIds"]),
        ({"blobId": blob_id, "mailboxIds": {"nosuchbox": True}}, ["mailboxIds"]),
        ({"blobId": blob_id}, ["mailboxIds"]),
        ({"blobId": "B" + "0" * 64, "mailboxIds": {boxes["inbox"]: True}}, ["blobId"]),
        (
            {
                "blobId": blob_id,
                "mailboxIds": {boxes["inbox"]: True},
                "keywords": {"bad keyword": True},
            },
            ["keywords"],
        ),
        ({"blobId": blob_id, "mailboxIds": {boxes["inbox"]: False}}, ["mailboxIds"]),
    ]
    for given, bad in cases:
        result = client.ok("Email/import", {"accountId": account_id, "emails": {"e": given}})
        error = result["notCreated"]["e"]
        assert (error["type"], error["properties"]) == ("invalidProperties", bad), given


def test_threads_and_counts(server: Server) -> None:
    client, account_id, boxes = account(server)
    inbox, archive = boxes["inbox"], boxes["archive"]
    # emailIds are in receivedAt order (§3): the reply is received later.
    first = import_(
        client,
        account_id,
        inbox,
        message("Plans", "<a@example.com>"),
        receivedAt="2014-10-13T14:00:00Z",
    )
    reply = import_(
        client,
        account_id,
        inbox,
        message(
            "Re: Plans",
            "<b@example.com>",
            refs="<a@example.com>",
            date="Mon, 13 Oct 2014 15:00:00 +0000",
        ),
        receivedAt="2014-10-13T15:00:00Z",
    )
    other = import_(client, account_id, inbox, message("Other", "<c@example.com>"))
    # Same references but another subject: not the same conversation.
    unrelated = import_(
        client, account_id, inbox, message("Lunch", "<d@example.com>", refs="<a@example.com>")
    )
    assert reply["threadId"] == first["threadId"]
    assert len({first["threadId"], other["threadId"], unrelated["threadId"]}) == 3
    thread = client.ok("Thread/get", {"accountId": account_id, "ids": [first["threadId"]]})
    assert thread["list"] == [{"id": first["threadId"], "emailIds": [first["id"], reply["id"]]}]
    assert counts(client, account_id, inbox) == (4, 4, 3, 3)
    state = client.ok("Mailbox/get", {"accountId": account_id, "ids": []})["state"]
    # Reading one email of the thread: the thread stays unread (the other one is not read).
    client.ok(
        "Email/set", {"accountId": account_id, "update": {first["id"]: {"keywords/$seen": True}}}
    )
    assert counts(client, account_id, inbox) == (4, 3, 3, 3)
    changes = client.ok("Mailbox/changes", {"accountId": account_id, "sinceState": state})
    assert changes["updated"] == [inbox]
    assert changes["updatedProperties"] == [
        "totalEmails",
        "unreadEmails",
        "totalThreads",
        "unreadThreads",
    ]
    client.ok(
        "Email/set",
        {"accountId": account_id, "update": {reply["id"]: {"keywords": {"$seen": True}}}},
    )
    assert counts(client, account_id, inbox) == (4, 2, 3, 2)
    # Moving the reply to the archive.
    result = client.ok(
        "Email/set",
        {
            "accountId": account_id,
            "update": {reply["id"]: {f"mailboxIds/{inbox}": None, f"mailboxIds/{archive}": True}},
        },
    )
    assert result["updated"] == {reply["id"]: None}
    assert counts(client, account_id, inbox) == (3, 2, 3, 2)
    assert counts(client, account_id, archive) == (1, 0, 1, 0)
    # An Email must stay in a mailbox.
    result = client.ok(
        "Email/set", {"accountId": account_id, "update": {other["id"]: {"mailboxIds": {}}}}
    )
    assert result["notUpdated"][other["id"]]["properties"] == ["mailboxIds"]
    # blobId, threadId, size, receivedAt cannot change.
    result = client.ok("Email/set", {"accountId": account_id, "update": {other["id"]: {"size": 1}}})
    assert result["notUpdated"][other["id"]]["type"] == "invalidProperties"
    # Destroying: gone from the thread and the counts.
    thread_state = thread["state"]
    client.ok("Email/set", {"accountId": account_id, "destroy": [first["id"]]})
    thread = client.ok("Thread/get", {"accountId": account_id, "ids": [first["threadId"]]})
    assert thread["list"][0]["emailIds"] == [reply["id"]]
    thread_changes = client.ok(
        "Thread/changes", {"accountId": account_id, "sinceState": thread_state}
    )
    assert thread_changes["updated"] == [first["threadId"]]
    assert counts(client, account_id, inbox) == (2, 2, 2, 2)


def test_query_and_changes(server: Server) -> None:
    client, account_id, boxes = account(server)
    inbox = boxes["inbox"]
    state = client.ok("Email/get", {"accountId": account_id, "ids": []})["state"]
    made = [
        import_(
            client,
            account_id,
            inbox,
            message(f"m{i}", f"<q{i}@example.com>"),
            receivedAt=f"2024-01-0{i}T00:00:00Z",
        )
        for i in range(1, 5)
    ]
    reply = import_(
        client,
        account_id,
        inbox,
        message("Re: m1", "<q5@example.com>", refs="<q1@example.com>"),
        receivedAt="2024-01-05T00:00:00Z",
    )
    newest_first = [{"property": "receivedAt", "isAscending": False}]
    ids = client.ok(
        "Email/query",
        {"accountId": account_id, "filter": {"inMailbox": inbox}, "sort": newest_first},
    )["ids"]
    assert ids == [reply["id"], *(m["id"] for m in reversed(made))]
    collapsed = client.ok(
        "Email/query",
        {
            "accountId": account_id,
            "filter": {"inMailbox": inbox},
            "sort": newest_first,
            "collapseThreads": True,
        },
    )
    assert collapsed["ids"] == [reply["id"], made[3]["id"], made[2]["id"], made[1]["id"]]
    changes = client.ok("Email/changes", {"accountId": account_id, "sinceState": state})
    assert sorted(changes["created"]) == sorted([reply["id"], *(m["id"] for m in made)])
    name, error = client.call(
        "Email/query", {"accountId": account_id, "filter": {"noSuchFilter": 1}}
    )
    assert (name, error["type"]) == ("error", "unsupportedFilter")


def test_mailbox_with_emails_cannot_simply_go(server: Server) -> None:
    client, account_id, boxes = account(server)
    junk = boxes["junk"]
    email = import_(client, account_id, junk, message("spam", "<s@example.com>"))
    result = client.ok("Mailbox/set", {"accountId": account_id, "destroy": [junk]})
    assert result["notDestroyed"][junk]["type"] == "mailboxHasEmail"
    result = client.ok(
        "Mailbox/set", {"accountId": account_id, "destroy": [junk], "onDestroyRemoveEmails": True}
    )
    assert result["destroyed"] == [junk]
    got = client.ok("Email/get", {"accountId": account_id, "ids": [email["id"]]})
    assert got["notFound"] == [email["id"]]


def test_create_a_draft_with_an_attachment(server: Server) -> None:
    """§4.6: an Email/set create composes a real message; the attachment is the uploaded bytes."""
    client, account_id, boxes = account(server)
    drafts = boxes["drafts"]
    pdf = b"%PDF-1.4\n\x00\xff binary \xe9\n%%EOF\n"
    blob_id = upload(client, account_id, pdf)
    draft = {
        "mailboxIds": {drafts: True},
        "keywords": {"$draft": True},
        "from": [{"name": "Ann Ö", "email": "ann@example.com"}],
        "to": [{"name": None, "email": "bob@example.com"}],
        "subject": "Entwürfe",
        "bodyValues": {"t": {"value": "See the file."}},
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "attachments": [{"blobId": blob_id, "type": "application/pdf", "name": "Bericht.pdf"}],
    }
    result = client.ok("Email/set", {"accountId": account_id, "create": {"d": draft}})
    assert result["notCreated"] is None, result["notCreated"]
    created = result["created"]["d"]
    assert set(created) == {"id", "blobId", "threadId", "size"}
    email = client.ok(
        "Email/get",
        {"accountId": account_id, "ids": [created["id"]], "fetchTextBodyValues": True,
         "properties": ["from", "to", "subject", "keywords", "mailboxIds", "messageId",
                        "sentAt", "textBody", "attachments", "bodyValues", "hasAttachment"]},
    )["list"][0]  # fmt: skip
    assert email["from"] == draft["from"] and email["to"] == draft["to"]
    assert email["subject"] == "Entwürfe"
    assert email["keywords"] == {"$draft": True}
    assert email["messageId"] and email["sentAt"]  # generated
    assert email["hasAttachment"] is True
    (text,) = email["textBody"]
    assert email["bodyValues"][text["partId"]]["value"].rstrip("\r\n") == "See the file."
    (attachment,) = email["attachments"]
    assert (attachment["name"], attachment["type"]) == ("Bericht.pdf", "application/pdf")
    url = client.session()["downloadUrl"]
    for var, value in {"accountId": account_id, "blobId": attachment["blobId"],
                       "name": "b.pdf", "type": "application/pdf"}.items():  # fmt: skip
        url = url.replace("{" + var + "}", value)
    assert client.http.get(url).content == pdf
    # A draft is not unread (§2: neither $seen nor $draft).
    assert counts(client, account_id, drafts) == (1, 0, 1, 0)


def test_create_errors(server: Server) -> None:
    client, account_id, boxes = account(server)
    inbox = boxes["inbox"]
    missing = "B" + "1" * 64
    cases: list[tuple[dict[str, Any], str, list[str]]] = [
        ({"subject": "no mailbox"}, "invalidProperties", ["mailboxIds"]),
        ({"mailboxIds": {inbox: True}, "preview": "x"}, "invalidProperties", ["preview"]),
        ({"mailboxIds": {inbox: True}, "keywords": {"a b": True}}, "invalidProperties",
         ["keywords"]),
        ({"mailboxIds": {inbox: True}, "textBody": [{"partId": "t"}]}, "invalidProperties",
         ["textBody/0/partId"]),
        ({"mailboxIds": {inbox: True}, "attachments": [{"blobId": missing}]}, "blobNotFound",
         ["attachments/0/blobId"]),
    ]  # fmt: skip
    for given, kind, properties in cases:
        result = client.ok("Email/set", {"accountId": account_id, "create": {"c": given}})
        error = result["notCreated"]["c"]
        assert (error["type"], error["properties"]) == (kind, properties), (given, error)
        if kind == "blobNotFound":
            assert error["notFound"] == [missing]


def test_copy_to_another_account(server: Server) -> None:
    """§4.7: the copy has a new id, the same blob, the given mailboxes, the original keywords
    and receivedAt unless given; onSuccessDestroyOriginal destroys the original."""
    client, account_id, boxes = account(server)
    other_name = "copy-target-" + account_id + "@example.com"
    from tests.conftest import jmapd

    jmapd(server.data, "account", "add", other_name, "--password", "pw")
    jmapd(server.data, "account", "grant", other_name, client.session()["username"])
    target = next(a for a, v in client.session()["accounts"].items() if v["name"] == other_name)
    target_inbox = next(
        m["id"]
        for m in client.ok("Mailbox/get", {"accountId": target, "ids": None})["list"]
        if m["role"] == "inbox"
    )
    raw = message("Copy me", "<copy@example.com>")
    original = import_(client, account_id, boxes["inbox"], raw, keywords={"$flagged": True},
                       receivedAt="2021-05-06T07:08:09Z")  # fmt: skip
    responses = client.request([["Email/copy", {
        "fromAccountId": account_id, "accountId": target, "onSuccessDestroyOriginal": True,
        "create": {"c": {"id": original["id"], "mailboxIds": {target_inbox: True}}},
    }, "k"]])["methodResponses"]  # fmt: skip
    assert [(r[0], r[2]) for r in responses] == [("Email/copy", "k"), ("Email/set", "k")]
    result, implicit = responses[0][1], responses[1][1]
    assert implicit["destroyed"] == [original["id"]]
    copy = result["created"]["c"]
    assert copy["id"] != original["id"]
    assert copy["blobId"] == original["blobId"]
    got = client.ok("Email/get", {"accountId": target, "ids": [copy["id"]],
                                  "properties": ["mailboxIds", "keywords", "receivedAt",
                                                 "subject"]})["list"][0]  # fmt: skip
    assert got == {"id": copy["id"], "mailboxIds": {target_inbox: True},
                   "keywords": {"$flagged": True}, "receivedAt": "2021-05-06T07:08:09Z",
                   "subject": "Copy me"}  # fmt: skip
    gone = client.ok("Email/get", {"accountId": account_id, "ids": [original["id"]]})
    assert gone["notFound"] == [original["id"]]
    result = client.ok("Email/copy", {
        "fromAccountId": account_id, "accountId": target,
        "create": {"c": {"id": copy["id"]}},
    })  # fmt: skip
    assert result["notCreated"]["c"]["type"] == "notFound"


def test_a_malformed_message_is_stored_byte_identical(server: Server) -> None:
    """Bad input: a broken message still imports; its raw blob downloads unchanged."""
    client, account_id, boxes = account(server)
    raw = b"Subject: half\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nbroken \xff\xfe"
    created = import_(client, account_id, boxes["inbox"], raw)
    got = client.ok("Email/get", {"accountId": account_id, "ids": [created["id"]]})
    assert got["list"][0]["subject"] == "half"
    url = client.session()["downloadUrl"]
    for var, value in {"accountId": account_id, "blobId": created["blobId"], "name": "m.eml",
                       "type": "message/rfc822"}.items():  # fmt: skip
        url = url.replace("{" + var + "}", value)
    assert client.http.get(url).content == raw


def test_every_advertised_sort(server: Server) -> None:
    """§1.3.1 emailQuerySortOptions: each listed property sorts Email/query (§4.4.2)."""
    client, account_id, boxes = account(server)
    session = client.session()
    options = session["accounts"][account_id]["accountCapabilities"]["urn:ietf:params:jmap:mail"][
        "emailQuerySortOptions"
    ]
    rows = [  # subject, from name, to, date, body padding
        ("banana", "Carol", "zed@example.com", "Tue, 01 Jan 2019 00:00:00 +0000", 10),
        ("apple", "Alice", "amy@example.com", "Thu, 03 Jan 2019 00:00:00 +0000", 300),
        ("Cherry", "bob", "max@example.com", "Wed, 02 Jan 2019 00:00:00 +0000", 100),
    ]
    ids = []
    for i, (subject, name, to, date, pad) in enumerate(rows):
        raw = (
            f"From: {name} <{name.lower()}@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\nMessage-ID: <sort{i}@example.com>\r\n\r\n{'x' * pad}\r\n"
        )
        ids.append(import_(client, account_id, boxes["inbox"], raw.encode(),
                           receivedAt=f"2019-02-0{3 - i}T00:00:00Z")["id"])  # fmt: skip
    expected = {
        "subject": [1, 0, 2],  # apple, banana, Cherry (i;unicode-casemap)
        "from": [1, 2, 0],  # Alice, bob, Carol
        "to": [1, 2, 0],  # amy, max, zed
        "sentAt": [0, 2, 1],
        "size": [0, 2, 1],
        "receivedAt": [2, 1, 0],
    }
    # The keyword sorts need a keyword; test_email_query.py sorts by them.
    keyword_sorts = ["hasKeyword", "allInThreadHaveKeyword", "someInThreadHaveKeyword"]
    assert sorted(options) == sorted([*expected, *keyword_sorts])
    for prop, order in expected.items():
        got = client.ok("Email/query", {"accountId": account_id,
                                         "sort": [{"property": prop}]})["ids"]  # fmt: skip
        assert got == [ids[i] for i in order], prop


def expected_counts(client: Client, account_id: str) -> dict[str, tuple[int, int, int, int]]:
    """Every mailbox's counts (§2) computed from the Emails themselves: unreadThreads is the
    number of threads with an unread Email in the mailbox."""
    query = client.ok("Email/query", {"accountId": account_id})["ids"]
    emails = client.ok(
        "Email/get",
        {"accountId": account_id, "ids": query,
         "properties": ["mailboxIds", "keywords", "threadId"]},
    )["list"]  # fmt: skip
    boxes = client.ok("Mailbox/get", {"accountId": account_id, "ids": None})["list"]
    out = {}
    for box in boxes:
        inside = [e for e in emails if box["id"] in e["mailboxIds"]]
        unread = [e for e in inside if not ({"$seen", "$draft"} & set(e["keywords"]))]
        out[box["id"]] = (
            len(inside), len(unread), len({e["threadId"] for e in inside}),
            len({e["threadId"] for e in unread}),
        )  # fmt: skip
    return out


def shown_counts(client: Client, account_id: str) -> dict[str, tuple[int, int, int, int]]:
    boxes = client.ok("Mailbox/get", {"accountId": account_id, "ids": None})["list"]
    return {
        b["id"]: (b["totalEmails"], b["unreadEmails"], b["totalThreads"], b["unreadThreads"])
        for b in boxes
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_counts_stay_exact_through_random_changes(server: Server, seed: int) -> None:
    """The counts are kept as messages come, change and go (not recounted): after every step
    of random imports (new threads and replies), keyword changes, moves, copies into a second
    mailbox, destroys and a mailbox destroyed with its Emails, they equal a recount."""
    rng = random.Random(seed)
    client, account_id, boxes = account(server)
    folder = client.ok(
        "Mailbox/set", {"accountId": account_id, "create": {"f": {"name": "Folder"}}}
    )["created"]["f"]["id"]
    places = [boxes["inbox"], boxes["archive"], folder]
    live: dict[str, str] = {}  # Email id → its Message-ID
    for step in range(40):
        action = rng.choice(["import", "import", "keyword", "move", "add", "destroy"])
        if action == "import" or not live:
            parent = rng.choice(sorted(live)) if live and rng.random() < 0.5 else None
            msgid = f"<r{seed}-{step}@example.com>"
            refs = live[parent] if parent else ""
            raw = message("Topic" if parent else f"Topic {step}", msgid, refs=refs)
            keywords = {"$seen": True} if rng.random() < 0.5 else {}
            created = import_(client, account_id, rng.choice(places), raw, keywords=keywords)
            live[created["id"]] = msgid
        else:
            target = rng.choice(sorted(live))
            arguments: dict[str, Any] = {"accountId": account_id}
            if action == "keyword":
                keyword = rng.choice(["$seen", "$draft", "$flagged"])
                arguments["update"] = {target: {f"keywords/{keyword}": rng.choice([True, None])}}
            elif action == "move":
                arguments["update"] = {target: {"mailboxIds": {rng.choice(places): True}}}
            elif action == "add":
                arguments["update"] = {target: {f"mailboxIds/{rng.choice(places)}": True}}
            else:
                arguments["destroy"] = [target]
                del live[target]
            result = client.ok("Email/set", arguments)
            assert not result.get("notUpdated") and not result.get("notDestroyed"), result
        assert shown_counts(client, account_id) == expected_counts(client, account_id), step
    client.ok(
        "Mailbox/set",
        {"accountId": account_id, "destroy": [folder], "onDestroyRemoveEmails": True},
    )
    assert shown_counts(client, account_id) == expected_counts(client, account_id)
