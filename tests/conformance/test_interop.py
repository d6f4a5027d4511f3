"""What third-party clients and independent suites found wrong (issue 9), one test each, over
real HTTP on both backends: Email threads, search and composing (RFC 8621 §3, §4), Email/set
with whole objects sent back (RFC 8620 §5.3), Email/parse, downloads, session URLs, state
strings and the event source."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import httpx
import pytest

from tests.conformance.notes import error, fresh_account
from tests.conformance.test_email import account, import_, message, upload
from tests.conformance.test_eventsource import connect, eventsource_url
from tests.conftest import DATABASES, Client, Server, jmapd, start_server, stop_server

# -- threads (RFC 8621 §3) -------------------------------------------------------------------------


def destroy(client: Client, account_id: str, *ids: str) -> None:
    result = client.ok("Email/set", {"accountId": account_id, "destroy": list(ids)})
    assert result["destroyed"] == list(ids), result


def test_reimported_conversation_threads_again(server: Server) -> None:
    """Issue 9: once every Email of a conversation was destroyed, the same two messages
    imported again went into two threads."""
    client, account_id, boxes = account(server)
    parent = message("Plans", "<p1@example.com>")
    reply = message("Re: Plans", "<r1@example.com>", refs="<p1@example.com>")
    times = ("2020-01-01T10:00:00Z", "2020-01-01T11:00:00Z")

    def both() -> list[dict[str, Any]]:
        return [
            import_(client, account_id, boxes["inbox"], raw, receivedAt=at)
            for raw, at in zip((parent, reply), times, strict=True)
        ]

    first = both()
    assert first[0]["threadId"] == first[1]["threadId"]
    destroy(client, account_id, *(e["id"] for e in first))
    again = both()
    assert again[0]["threadId"] == again[1]["threadId"]
    thread = client.ok("Thread/get", {"accountId": account_id, "ids": [again[0]["threadId"]]})
    assert thread["list"][0]["emailIds"] == [again[0]["id"], again[1]["id"]]


def test_replies_to_a_deleted_message_share_a_thread(server: Server) -> None:
    """Issue 9: deleting a one-message thread, then receiving two replies to it, gave two
    threads (two replies to a parent never seen did share one)."""
    client, account_id, boxes = account(server)
    parent = import_(client, account_id, boxes["inbox"], message("Trip", "<t0@example.com>"))
    destroy(client, account_id, parent["id"])
    replies = [
        import_(
            client,
            account_id,
            boxes["inbox"],
            message("Re: Trip", f"<t{i}@example.com>", refs="<t0@example.com>"),
        )
        for i in (1, 2)
    ]
    assert replies[0]["threadId"] == replies[1]["threadId"]
    assert replies[0]["threadId"] != parent["threadId"]
    # And the parent's own id, seen again, joins them.
    again = import_(client, account_id, boxes["inbox"], message("Trip", "<t0@example.com>"))
    assert again["threadId"] == replies[0]["threadId"]


# -- search: any message that can be stored can be indexed -----------------------------------------


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(digits[n // 36**k % 36] for k in (3, 2, 1, 0))


def long_word_message(msgid: str, body: str) -> bytes:
    return (
        f"From: a@example.com\r\nTo: b@example.com\r\nSubject: long words\r\n"
        f"Message-ID: {msgid}\r\n\r\n{body}\r\n"
    ).encode()


def test_messages_with_huge_words_are_imported_and_searchable(server: Server) -> None:
    """Issue 9: on PostgreSQL a word of 2,048+ bytes or ~120k distinct words failed the
    message with serverFail, and every other message of the same Email/import with it."""
    client, account_id, boxes = account(server)
    token = "x" * 5000  # a long tracking URL's token, unbroken base64
    # 120,000 distinct words: 720 kB of mail, twice what a PostgreSQL tsvector holds.
    distinct = " ".join("z" + base36(i) for i in range(120_000))
    raws = {
        "ok1": long_word_message("<ok1@example.com>", "plain words here"),
        "long": long_word_message("<long@example.com>", f"see https://t.example/{token} now"),
        "many": long_word_message("<many@example.com>", distinct),
        "ok2": long_word_message("<ok2@example.com>", "more plain words"),
    }
    blobs = {cid: upload(client, account_id, raw) for cid, raw in raws.items()}
    emails = {
        cid: {"blobId": blob, "mailboxIds": {boxes["inbox"]: True}} for cid, blob in blobs.items()
    }
    result = client.ok("Email/import", {"accountId": account_id, "emails": emails})
    assert result["notCreated"] is None, result["notCreated"]
    created = {cid: e["id"] for cid, e in result["created"].items()}

    def found(text: str) -> list[str]:
        query = {"accountId": account_id, "filter": {"body": text}}
        return list(client.ok("Email/query", query)["ids"])

    assert found("tracking") == [] and found("now") == [created["long"]]
    assert found(token) == [created["long"]]  # the whole word finds it
    assert found("z0001") == [created["many"]]  # the start of a capped document
    assert sorted(found("plain")) == sorted([created["ok1"], created["ok2"]])


def test_a_bad_message_fails_only_itself(server: Server) -> None:
    """Issue 9: one bad message in an Email/import fails only itself (its SetError), never
    its neighbours."""
    client, account_id, boxes = account(server)
    good = upload(client, account_id, message("Fine", "<fine@example.com>"))
    inbox = {boxes["inbox"]: True}
    emails = {
        "a": {"blobId": good, "mailboxIds": inbox},
        "b": {"blobId": "B" + "0" * 64, "mailboxIds": inbox},
        "c": {"blobId": good, "mailboxIds": inbox, "keywords": {"$seen": "yes"}},
        "d": {"blobId": good, "mailboxIds": inbox, "keywords": {"$seen": True}},
    }
    result = client.ok("Email/import", {"accountId": account_id, "emails": emails})
    assert sorted(result["created"]) == ["a", "d"]
    assert result["notCreated"]["b"]["properties"] == ["blobId"]
    assert result["notCreated"]["c"]["properties"] == ["keywords"]


# -- composing (RFC 8621 §4.6) ---------------------------------------------------------------------


def draft(boxes: dict[str, str], **email: Any) -> dict[str, Any]:
    return {"mailboxIds": {boxes["drafts"]: True}, "keywords": {"$draft": True}, **email}


def get_email(client: Client, account_id: str, id: str, **args: Any) -> dict[str, Any]:
    result = client.ok("Email/get", {"accountId": account_id, "ids": [id], **args})
    return dict(result["list"][0])


def test_text_saved_again_and_again_stays_byte_stable(server: Server) -> None:
    """Issue 9: "hi" read back "hi\\n"; a draft saved and re-read N times must not grow."""
    client, account_id, boxes = account(server)
    value = "hi"
    for _ in range(4):
        email = draft(
            boxes,
            subject="stable",
            textBody=[{"partId": "t", "type": "text/plain"}],
            bodyValues={"t": {"value": value}},
        )
        result = client.ok("Email/set", {"accountId": account_id, "create": {"d": email}})
        created = result["created"]["d"]
        got = get_email(client, account_id, created["id"], fetchTextBodyValues=True)
        part_id = got["textBody"][0]["partId"]
        value = got["bodyValues"][part_id]["value"]
        assert value == "hi"
        destroy(client, account_id, created["id"])


WRONG_TYPES: list[tuple[dict[str, Any], list[str]]] = [
    ({"attachments": "not a list"}, ["attachments"]),
    ({"attachments": [5]}, ["attachments/0"]),
    ({"attachments": [{"blobId": 7, "type": "image/png"}]}, ["attachments/0/blobId"]),
    ({"textBody": {"partId": "t"}}, ["textBody"]),
    ({"textBody": [{"partId": ["t"]}]}, ["textBody/0/partId"]),
    ({"bodyValues": []}, ["bodyValues"]),
    ({"bodyValues": {"t": "just text"}}, ["bodyValues/t"]),
    ({"bodyValues": {"t": {"value": 5}}}, ["bodyValues/t"]),
    ({"bodyValues": {"t": {"value": "x", "isTruncated": "no"}}}, ["bodyValues/t/isTruncated"]),
    ({"bodyStructure": "text/plain"}, ["bodyStructure"]),
    ({"bodyStructure": {"type": "multipart/mixed", "subParts": {}}}, ["bodyStructure/subParts"]),
    ({"from": "joe@example.com"}, ["from"]),
    ({"to": [{"name": "x"}]}, ["to"]),
    ({"subject": ["a"]}, ["subject"]),
    ({"header:X-Thing:asAddresses": "x"}, ["header:X-Thing:asAddresses"]),
    # Several at once: all of them are named (§5.3).
    ({"subject": 1, "from": 2, "textBody": 3}, ["subject", "from", "textBody"]),
    # Control characters would fold into header lines of their own (a forged From, a Bcc).
    ({"header:X-Mailer": " a\x0bFrom: evil@example.com"}, ["header:X-Mailer"]),
    ({"header:X-Mailer:asText": "a\x0cBcc: spy@example.com"}, ["header:X-Mailer:asText"]),
    ({"subject": "a\x1cb"}, ["subject"]),
    ({"to": [{"name": "x\x1e", "email": "x@example.com"}]}, ["to"]),
    ({"to": [{"name": "x", "email": "x@example.com\nBcc: y@example.com"}]}, ["to"]),
    ({"attachments": [{"blobId": "b", "name": "a\u2028b"}]}, ["attachments/0/name"]),
]


@pytest.mark.parametrize("email,bad", WRONG_TYPES, ids=[str(b) for _, b in WRONG_TYPES])
def test_wrong_types_in_a_create_are_invalid_properties(
    server: Server, email: dict[str, Any], bad: list[str]
) -> None:
    """Issue 9: wrong types inside Email/set create raised; the call became serverFail and
    the valid create beside it was lost. Now: invalidProperties naming every bad property,
    for that create only."""
    client, account_id, boxes = account(server)
    good = draft(
        boxes, subject="fine", textBody=[{"partId": "t"}], bodyValues={"t": {"value": "ok"}}
    )
    result = client.ok(
        "Email/set",
        {"accountId": account_id, "create": {"good": good, "bad": draft(boxes, **email)}},
    )
    assert list(result["created"]) == ["good"]
    failure = result["notCreated"]["bad"]
    assert failure["type"] == "invalidProperties", failure
    assert sorted(failure["properties"]) == sorted(bad)


def test_invalid_metadata_and_body_are_named_together(server: Server) -> None:
    client, account_id, _ = account(server)
    email = {"mailboxIds": {}, "keywords": {"bad word": True}, "subject": 5}
    result = client.ok("Email/set", {"accountId": account_id, "create": {"x": email}})
    failure = result["notCreated"]["x"]
    assert failure["type"] == "invalidProperties"
    assert sorted(failure["properties"]) == ["keywords", "mailboxIds", "subject"]


# -- Email/get -------------------------------------------------------------------------------------


def test_body_structure_always_has_its_sub_parts(server: Server) -> None:
    """Issue 9: bodyStructure asked for without bodyProperties came back without subParts:
    every multipart message looked like one empty part."""
    client, account_id, boxes = account(server)
    email = draft(
        boxes,
        textBody=[{"partId": "t"}],
        htmlBody=[{"partId": "h"}],
        bodyValues={"t": {"value": "plain"}, "h": {"value": "<p>html</p>"}},
    )
    created = client.ok("Email/set", {"accountId": account_id, "create": {"d": email}})
    id = created["created"]["d"]["id"]
    for args in ({}, {"bodyProperties": ["partId", "type"]}):
        got = get_email(client, account_id, id, properties=["bodyStructure"], **args)
        structure = got["bodyStructure"]
        assert structure["type"] == "multipart/alternative"
        assert [p["type"] for p in structure["subParts"]] == ["text/plain", "text/html"]
        assert all("subParts" not in p or p["subParts"] is None for p in structure["subParts"])


# -- whole objects sent back (RFC 8620 §5.3) -------------------------------------------------------


def test_a_whole_email_sent_back_is_accepted(server: Server) -> None:
    """Issue 9: an update with server-set or immutable properties at their current values
    (preview, hasAttachment, subject, …) got invalidProperties; only a different value is
    an error, and every property at fault is named."""
    client, account_id, boxes = account(server)
    email = draft(
        boxes,
        subject="Whole",
        **{"from": [{"name": "Ann", "email": "ann@example.com"}]},
        textBody=[{"partId": "t"}],
        bodyValues={"t": {"value": "hello there"}},
    )
    id = client.ok("Email/set", {"accountId": account_id, "create": {"d": email}})["created"]["d"][
        "id"
    ]
    for args in (
        {},
        {"fetchTextBodyValues": True, "maxBodyValueBytes": 3},
        {"properties": ["id", "subject", "headers", "bodyStructure", "header:Subject:asText"],
         "bodyProperties": ["partId", "type", "headers"]},
    ):  # fmt: skip
        whole = get_email(client, account_id, id, **args)
        whole["keywords"] = {"$draft": True, "$seen": True}
        result = client.ok("Email/set", {"accountId": account_id, "update": {id: whole}})
        assert result["notUpdated"] is None, (args, result["notUpdated"])
    assert get_email(client, account_id, id)["keywords"] == {"$draft": True, "$seen": True}
    changed = get_email(client, account_id, id)
    changed |= {"subject": "Other", "preview": "x", "size": 1, "nosuch": 1}
    result = client.ok("Email/set", {"accountId": account_id, "update": {id: changed}})
    failure = result["notUpdated"][id]
    assert failure["type"] == "invalidProperties"
    assert sorted(failure["properties"]) == ["nosuch", "preview", "size", "subject"]


def test_a_whole_mailbox_sent_back_is_accepted(server: Server) -> None:
    client, account_id, boxes = account(server)
    import_(client, account_id, boxes["inbox"], message("Counted", "<counted@example.com>"))
    inbox = client.ok("Mailbox/get", {"accountId": account_id, "ids": [boxes["inbox"]]})["list"][0]
    assert inbox["totalEmails"] == 1
    whole = dict(inbox, sortOrder=7)
    result = client.ok("Mailbox/set", {"accountId": account_id, "update": {inbox["id"]: whole}})
    assert result["notUpdated"] is None, result
    changed = dict(inbox, totalEmails=5, myRights=dict(inbox["myRights"], mayDelete=False))
    changed["role"] = 7
    result = client.ok("Mailbox/set", {"accountId": account_id, "update": {inbox["id"]: changed}})
    failure = result["notUpdated"][inbox["id"]]
    assert failure["type"] == "invalidProperties"
    assert sorted(failure["properties"]) == ["myRights", "role", "totalEmails"]


# -- creates in the order of their references (RFC 8620 §5.3) --------------------------------------


def test_a_create_is_made_after_the_one_it_refers_to(server: Server) -> None:
    """Issue 9: create {"c": {"parentId": "#p"}, "p": {…}} rejected c: the map has no order
    a client can rely on."""
    client, account_id = fresh_account(server, "order")
    create = {
        "c": {"name": "Child", "parentId": "#p"},
        "g": {"name": "Grandchild", "parentId": "#c"},
        "p": {"name": "Parent"},
    }
    result = client.ok("Mailbox/set", {"accountId": account_id, "create": create})
    assert result["notCreated"] is None, result["notCreated"]
    ids = {cid: created["id"] for cid, created in result["created"].items()}
    got = client.ok("Mailbox/get", {"accountId": account_id, "ids": list(ids.values())})
    parents = {m["id"]: m["parentId"] for m in got["list"]}
    assert parents == {ids["p"]: None, ids["c"]: ids["p"], ids["g"]: ids["c"]}


def test_a_reference_cycle_fails_only_its_records(server: Server) -> None:
    client, account_id = fresh_account(server, "cycle")
    create = {
        "a": {"name": "A", "parentId": "#b"},
        "b": {"name": "B", "parentId": "#a"},
        "self": {"name": "Self", "parentId": "#self"},
        "after": {"name": "After", "parentId": "#a"},
        "fine": {"name": "Fine"},
    }
    result = client.ok("Mailbox/set", {"accountId": account_id, "create": create})
    assert list(result["created"]) == ["fine"]
    for cid in ("a", "b", "self", "after"):
        failure = result["notCreated"][cid]
        assert failure["type"] == "invalidProperties", (cid, failure)
        assert failure["properties"] == ["parentId"], (cid, failure)


# -- Email/parse, downloads ------------------------------------------------------------------------


def download_url(client: Client, account_id: str, blob_id: str, type: str) -> str:
    url = client.session()["downloadUrl"]
    values = {"accountId": account_id, "blobId": blob_id, "name": "x", "type": type}
    for var, value in values.items():
        url = url.replace("{" + var + "}", urllib.parse.quote(value, safe=""))
    return url


def database_rows(server: Server, sql: str, *params: Any) -> list[Any]:
    """Rows of the server's database, read beside it (SQLite file or PostgreSQL)."""
    url = DATABASES.by_data.get(server.data)
    if url:
        import psycopg

        with psycopg.connect(url) as db:
            return db.execute(sql.replace("?", "%s"), params).fetchall()
    import sqlite3

    with sqlite3.connect(server.data / "jmapd.sqlite3") as db:
        return db.execute(sql, params).fetchall()


def test_email_parse_writes_nothing_into_a_read_only_account(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    """Issue 9: Email/parse wrote its parts' blobs into the account it read; alice may only
    read carol's. Now parts are derived from the parsed blob and readable with it."""
    carol = server.client("carol@example.com")
    raw = (
        b"From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
        b"\r\nbody text\r\n--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n"
    )
    inbox = next(
        m["id"]
        for m in carol.ok("Mailbox/get", {"accountId": ids["carol"], "ids": None})["list"]
        if m["role"] == "inbox"
    )
    import_(carol, ids["carol"], inbox, raw)
    email = carol.ok("Email/query", {"accountId": ids["carol"], "filter": {"subject": "parts"}})
    (email_id,) = email["ids"]
    blob_id = get_email(carol, ids["carol"], email_id, properties=["blobId"])["blobId"]
    count = "SELECT count(*) FROM blobs WHERE account_id = ?"
    before = database_rows(server, count, ids["carol"])
    parsed = alice.ok("Email/parse", {"accountId": ids["carol"], "blobIds": [blob_id]})
    attachment = parsed["parsed"][blob_id]["attachments"][0]
    r = alice.http.get(download_url(alice, ids["carol"], attachment["blobId"], "x/y"))
    assert r.status_code == 200 and r.content == b"\x00\x01\x02\x03"
    assert database_rows(server, count, ids["carol"]) == before
    # Nobody without access to carol's account reads the part.
    bob = server.client("bob@example.com")
    assert (
        bob.http.get(download_url(bob, ids["carol"], attachment["blobId"], "x/y")).status_code
        == 404
    )


@pytest.mark.parametrize(
    "type",
    ["text/plain", "text/html", "image/svg+xml", 'text/plain; charset="iso-8859-1"',
     "application/octet-stream"],
)  # fmt: skip
def test_download_content_type_is_exactly_the_type(
    alice: Client, ids: dict[str, str], type: str
) -> None:
    """Ruling (issue 9): the Content-Type is exactly the type parameter (no charset added),
    and the content is never sniffed."""
    blob = upload(alice, ids["alice"], b"<html><script>alert(1)</script></html>")
    r = alice.http.get(download_url(alice, ids["alice"], blob, type))
    assert r.status_code == 200
    assert r.headers["content-type"] == type
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("type", ["text/plain\x01", "text/plaïn", "text/plain\r\nX: y", "a b"])
def test_download_with_an_unsafe_type_is_400(alice: Client, ids: dict[str, str], type: str) -> None:
    blob = upload(alice, ids["alice"], b"data")
    r = alice.http.get(download_url(alice, ids["alice"], blob, type))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_an_upload_keeps_the_type_it_was_given(alice: Client, ids: dict[str, str]) -> None:
    """Uploads are never type-sniffed: HTML sent as text/plain stays text/plain, and
    without a type it is application/octet-stream."""
    url = alice.session()["uploadUrl"].replace("{accountId}", ids["alice"])
    html = b"<!DOCTYPE html><html><body>hi</body></html>"
    r = alice.http.post(url, content=html, headers={"Content-Type": "text/plain"})
    assert r.json()["type"] == "text/plain"
    r = alice.http.post(url, content=html + b" ", headers={"Content-Type": ""})
    assert r.json()["type"] == "application/octet-stream"


def test_copy_within_one_account_is_invalid_arguments(alice: Client, ids: dict[str, str]) -> None:
    """Ruling (issue 9): /copy with fromAccountId equal to accountId is invalidArguments."""
    account_id = ids["alice"]
    for name, args in (
        ("Email/copy", {"create": {"c": {"id": "x", "mailboxIds": {"m": True}}}}),
        ("Blob/copy", {"blobIds": ["B" + "0" * 64]}),
    ):
        args = {"fromAccountId": account_id, "accountId": account_id, **args}
        assert error(alice, name, args)["type"] == "invalidArguments", name


# -- the session and its URLs ----------------------------------------------------------------------


def test_well_known_and_session_use_the_public_url(tmp_path: Any) -> None:
    """Issue 9: behind a TLS proxy, /.well-known/jmap redirected to http (the request's
    scheme); with public_url set it goes there."""
    jmapd(tmp_path, "account", "add", "pat@example.com", "--password", "pat-secret")
    srv = start_server(tmp_path, env={"JMAPD_PUBLIC_URL": "https://mail.example.com"})
    try:
        with httpx.Client() as http:
            r = http.get(srv.base + "/.well-known/jmap")
        assert r.status_code == 307
        assert r.headers["location"] == "https://mail.example.com/jmap/session"
        session = srv.client_with(("pat@example.com", "pat-secret")).session()
        assert session["apiUrl"] == "https://mail.example.com/jmap/api"
    finally:
        stop_server(srv)


def test_forwarded_headers_only_from_trusted_proxies(tmp_path: Any) -> None:
    """X-Forwarded-Proto and -Host are believed from a configured trusted proxy only."""
    jmapd(tmp_path, "account", "add", "pat@example.com", "--password", "pat-secret")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mail.example.org"}
    for trusted, expected in (("", None), ("127.0.0.0/8", "https://mail.example.org")):
        srv = start_server(tmp_path, env={"JMAPD_TRUSTED_PROXIES": trusted})
        try:
            expected = expected or srv.base
            with httpx.Client(headers=forwarded) as http:
                r = http.get(srv.base + "/.well-known/jmap")
                assert r.headers["location"] == expected + "/jmap/session"
                r = http.get(srv.base + "/jmap/session", auth=("pat@example.com", "pat-secret"))
                assert r.json()["apiUrl"] == expected + "/jmap/api"
        finally:
            stop_server(srv)


# -- digits that are not ASCII digits --------------------------------------------------------------


@pytest.mark.parametrize(
    "state,expected",
    [("²", "invalidArguments"), ("1²", "invalidArguments"), ("\u0661", "invalidArguments"),
     ("12\n", "invalidArguments"), ("-1", "cannotCalculateChanges")],
)  # fmt: skip
def test_a_state_with_other_digits_is_invalid(
    alice: Client, ids: dict[str, str], state: str, expected: str
) -> None:
    """Issue 9: "²" in sinceState was a serverFail (str.isdigit takes it, int() does not). A
    state is printable ASCII: anything else is invalidArguments; one the server never gave
    cannot be calculated from."""
    for name, args in (
        ("Note/changes", {"sinceState": state}),
        ("Note/queryChanges", {"sinceQueryState": state}),
        ("Email/changes", {"sinceState": state}),
        ("Email/queryChanges", {"sinceQueryState": state}),
    ):
        failure = error(alice, name, {"accountId": ids["alice"], **args})
        assert failure["type"] == expected, (name, failure)


@pytest.mark.parametrize("ping", ["²", "\u0661", "1\n"])
def test_an_event_source_ping_with_other_digits_is_400(alice: Client, ping: str) -> None:
    url = eventsource_url(alice, "*", "no", urllib.parse.quote(ping))
    with alice.http.stream("GET", url) as r:  # were it a stream, it would not end
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"


def test_ids_with_a_trailing_newline_are_not_ids(alice: Client, ids: dict[str, str]) -> None:
    """Audit of every regular expression that used $ for the end of a string."""
    failure = error(alice, "Note/get", {"accountId": ids["alice"], "ids": ["abc\n"]})
    assert failure["type"] == "invalidArguments"


# -- the event source ends with its credential -----------------------------------------------------


def assert_stream_ends(server: Server, streaming: Client, *command: str) -> None:
    """An open event source (pinging every second) ends soon after the jmapd command."""
    with connect(streaming, closeafter="no", ping="1") as events:
        assert events.next() == ("ping", {"interval": 1})
        jmapd(server.data, *command)
        deadline = time.monotonic() + 15
        with pytest.raises(EOFError):
            while time.monotonic() < deadline:
                events.next()


def test_an_event_source_ends_when_its_token_is_revoked(server: Server) -> None:
    """Issue 9: an open EventSource stream outlived a revoked credential."""
    client, _ = fresh_account(server, "stream")
    name = client.session()["username"]
    token = jmapd(server.data, "token", "create", name, "--name", "push").strip()
    assert_stream_ends(server, server.client_with(token), "token", "revoke", name, "--name", "push")


def test_an_event_source_ends_when_the_password_changes(server: Server) -> None:
    client, _ = fresh_account(server, "stream")
    name = client.session()["username"]
    assert_stream_ends(server, client, "account", "passwd", name, "--password", "a-new-secret")
