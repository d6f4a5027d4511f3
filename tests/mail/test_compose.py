"""compose_message: Email/set create objects (RFC 8621 §4.6) to octets, checked by parsing back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from jmapd.mail import Message, parse_message
from jmapd.mail.compose import ComposeError, compose_message

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
BINARY = bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
BLOBS = {"bin": BINARY, "png": PNG, "note": b"line one\r\nline two\r\n"}


def compose(email: dict[str, Any]) -> bytes:
    return compose_message(email, BLOBS.get, now=NOW, hostname="mx.example.org")


def roundtrip(email: dict[str, Any]) -> Message:
    return parse_message(compose(email))


def error(email: dict[str, Any]) -> ComposeError:
    with pytest.raises(ComposeError) as info:
        compose(email)
    return info.value


def shape(part: dict[str, Any]) -> Any:
    """type, and subParts' shapes: a tree to compare."""
    if part["subParts"] is None:
        return part["type"]
    return [part["type"], *(shape(p) for p in part["subParts"])]


def text(message: Message, parts: list[dict[str, Any]]) -> list[str]:
    return [message.body_value(p["partId"])["value"] for p in parts]


PLAIN = {
    "from": [{"name": "Alice", "email": "alice@example.org"}],
    "to": [{"name": None, "email": "bob@example.com"}],
    "subject": "Hello",
    "textBody": [{"partId": "t"}],
    "bodyValues": {"t": {"value": "Hi Bob,\nsee you.\n"}},
}


def test_plain_text_only() -> None:
    message = roundtrip(PLAIN)
    props = message.properties()
    assert props["from"] == [{"name": "Alice", "email": "alice@example.org"}]
    assert props["to"] == [{"name": None, "email": "bob@example.com"}]
    assert props["subject"] == "Hello"
    assert props["cc"] is None and props["inReplyTo"] is None
    structure = message.body_structure()
    assert structure["type"] == "text/plain"
    assert structure["charset"] == "utf-8"
    assert text(message, message.text_body()) == ["Hi Bob,\nsee you.\n"]
    assert message.html_body() == message.text_body()
    assert message.attachments() == []
    assert message.header("MIME-Version", "Text") == "1.0"


def test_generated_message_id_and_date() -> None:
    message = roundtrip(PLAIN)
    (message_id,) = message.properties()["messageId"]
    assert re.fullmatch(r"[0-9a-f]{32}@mx\.example\.org", message_id)
    assert message.properties()["sentAt"] == "2024-01-02T03:04:05+00:00"
    assert roundtrip(PLAIN).properties()["messageId"] != [message_id]
    nulls = roundtrip(dict(PLAIN, messageId=None, sentAt=None)).properties()
    assert nulls["messageId"] is not None and nulls["sentAt"] == "2024-01-02T03:04:05+00:00"


def test_given_message_id_date_and_threading() -> None:
    email = dict(
        PLAIN,
        messageId=["abc@example.org"],
        inReplyTo=["parent@example.org"],
        references=["root@example.org", "parent@example.org"],
        sentAt="2023-05-06T07:08:09+02:00",
        cc=[{"name": "Carol", "email": "carol@example.net"}],
        bcc=[{"email": "dave@example.net"}],
        replyTo=[{"name": "Alice", "email": "reply@example.org"}],
        sender=[{"name": None, "email": "sender@example.org"}],
    )
    props = roundtrip(email).properties()
    assert props["messageId"] == ["abc@example.org"]
    assert props["inReplyTo"] == ["parent@example.org"]
    assert props["references"] == ["root@example.org", "parent@example.org"]
    assert props["sentAt"] == "2023-05-06T07:08:09+02:00"
    assert props["cc"] == [{"name": "Carol", "email": "carol@example.net"}]
    assert props["bcc"] == [{"name": None, "email": "dave@example.net"}]
    assert props["replyTo"] == [{"name": "Alice", "email": "reply@example.org"}]
    assert props["sender"] == [{"name": None, "email": "sender@example.org"}]


def test_text_and_html_alternative() -> None:
    email = dict(
        PLAIN,
        htmlBody=[{"partId": "h"}],
        bodyValues={"t": {"value": "plain\n"}, "h": {"value": "<p>html</p>\n"}},
    )
    message = roundtrip(email)
    assert shape(message.body_structure()) == ["multipart/alternative", "text/plain", "text/html"]
    assert text(message, message.text_body()) == ["plain\n"]
    assert text(message, message.html_body()) == ["<p>html</p>\n"]
    assert message.attachments() == []


def test_attachments_mixed_binary_byte_exact() -> None:
    email = dict(
        PLAIN,
        attachments=[
            {"blobId": "bin", "type": "application/octet-stream", "name": "data.bin"},
            {"blobId": "note", "type": "text/plain", "name": "note.txt", "charset": "us-ascii"},
        ],
    )
    message = roundtrip(email)
    assert shape(message.body_structure()) == [
        "multipart/mixed",
        "text/plain",
        "application/octet-stream",
        "text/plain",
    ]
    assert text(message, message.text_body()) == ["Hi Bob,\nsee you.\n"]
    binary, note = message.attachments()
    assert (binary["name"], binary["disposition"]) == ("data.bin", "attachment")
    assert message.part_content(binary["partId"]) == BINARY
    assert binary["size"] == len(BINARY)
    assert (note["name"], note["charset"]) == ("note.txt", "us-ascii")
    assert message.part_content(note["partId"]) == BLOBS["note"]
    assert message.has_attachment()


def test_inline_image_related() -> None:
    email = dict(
        PLAIN,
        htmlBody=[{"partId": "h"}],
        attachments=[
            {"blobId": "png", "type": "image/png", "cid": "logo@example.org"},
            {"blobId": "bin", "type": "application/pdf", "name": "a.pdf"},
        ],
        bodyValues={"t": {"value": "x\n"}, "h": {"value": '<img src="cid:logo@example.org">\n'}},
    )
    message = roundtrip(email)
    assert shape(message.body_structure()) == [
        "multipart/mixed",
        ["multipart/alternative", "text/plain", ["multipart/related", "text/html", "image/png"]],
        "application/pdf",
    ]
    image, pdf = message.attachments()
    assert (image["cid"], image["disposition"], image["type"]) == (
        "logo@example.org",
        "inline",
        "image/png",
    )
    assert message.part_content(image["partId"]) == PNG
    assert pdf["name"] == "a.pdf"
    assert text(message, message.html_body()) == ['<img src="cid:logo@example.org">\n']


def test_non_ascii_subject_names_and_filename() -> None:
    subject = "Grüße aus Köln — " + "ein sehr langer Betreff " * 6
    email = dict(
        PLAIN,
        subject=subject,
        to=[{"name": "Jöhn Dœ, Jr.", "email": "john@example.com"}],
        attachments=[{"blobId": "bin", "type": "application/pdf", "name": "Résumé été 😀.pdf"}],
    )
    raw = compose(email)
    assert raw.isascii()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in head  # RFC 2047 encoded words
    assert b"filename*=utf-8''R%C3%A9sum%C3%A9" in raw  # RFC 2231
    message = parse_message(raw)
    assert message.properties()["subject"] == subject
    assert message.properties()["to"] == [{"name": "Jöhn Dœ, Jr.", "email": "john@example.com"}]
    assert message.attachments()[0]["name"] == "Résumé été 😀.pdf"


def test_non_ascii_body_is_8bit_utf8() -> None:
    message = roundtrip(dict(PLAIN, bodyValues={"t": {"value": "Grüße 😀\n"}}))
    part = message.text_body()[0]
    assert message.header("Content-Transfer-Encoding", "Text") == "8bit"  # the part is the root
    assert [h["value"] for h in part["headers"] if h["name"] == "Content-Transfer-Encoding"] == [
        " 8bit"
    ]
    assert text(message, [part]) == ["Grüße 😀\n"]


def test_long_body_line_quoted_printable() -> None:
    long_line = "ä" * 1200 + "\n"
    raw = compose(dict(PLAIN, bodyValues={"t": {"value": long_line}}))
    assert b"quoted-printable" in raw
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = parse_message(raw)
    assert text(message, message.text_body()) == [long_line]


def test_crlf_and_line_lengths() -> None:
    email = dict(
        PLAIN,
        subject=" ".join(["word"] * 400),
        references=[f"id{i}@example.org" for i in range(100)],
        to=[{"name": f"Person {i}", "email": f"p{i}@example.com"} for i in range(100)],
        bodyValues={"t": {"value": "a\nb\r\nc\rd" + "x" * 2000}},
        attachments=[{"blobId": "bin", "type": "application/octet-stream"}],
    )
    raw = compose(email)
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    props = parse_message(raw).properties()
    assert props["subject"] == " ".join(["word"] * 400)
    assert len(props["references"]) == 100
    assert len(props["to"]) == 100


def test_header_custom_as_text_and_raw() -> None:
    email = dict(
        PLAIN,
        **{
            "header:X-Custom:asText": "héllo wörld",
            "header:X-Raw": " raw value\r\n\tfolded",
            "header:X-Many:all": [" one", " two"],
            "header:List-Post:asURLs": ["mailto:list@example.org", "https://example.org/post"],
            "header:X-Addr:asAddresses": [{"name": "Zoë", "email": "zoe@example.org"}],
            "header:X-Groups:asGroupedAddresses": [
                {"name": "Friends", "addresses": [{"name": None, "email": "f@example.org"}]},
                {"name": None, "addresses": [{"name": "Solo", "email": "s@example.org"}]},
            ],
            "header:X-When:asDate": "2020-02-03T04:05:06Z",
            "header:X-Ids:asMessageIds": ["a@b", "c@d"],
        },
    )
    message = roundtrip(email)
    assert message.header("X-Custom", "Text") == "héllo wörld"
    assert message.header("X-Raw") == " raw value\r\n\tfolded"
    assert message.header("X-Many", all=True) == [" one", " two"]
    assert message.header("List-Post", "URLs") == [
        "mailto:list@example.org",
        "https://example.org/post",
    ]
    assert message.header("X-Addr", "Addresses") == [{"name": "Zoë", "email": "zoe@example.org"}]
    assert message.header("X-Groups", "GroupedAddresses") == [
        {"name": "Friends", "addresses": [{"name": None, "email": "f@example.org"}]},
        {"name": None, "addresses": [{"name": "Solo", "email": "s@example.org"}]},
    ]
    assert message.header("X-When", "Date") == "2020-02-03T04:05:06+00:00"
    assert message.header("X-Ids", "MessageIds") == ["a@b", "c@d"]


def test_header_raw_utf8_kept() -> None:
    message = roundtrip(dict(PLAIN, **{"header:X-Raw:asRaw": " caf\u00e9"}))
    assert message.header("X-Raw") == " caf\u00e9"


def test_header_message_id_given_as_header_property() -> None:
    email = dict(PLAIN, **{"header:Message-ID:asMessageIds": ["x@y"], "header:Date": " junk"})
    message = roundtrip(email)
    assert message.properties()["messageId"] == ["x@y"]
    assert message.header("Date", all=True) == [" junk"]


def test_body_structure_input() -> None:
    email = {
        "from": [{"name": None, "email": "a@example.org"}],
        "bodyStructure": {
            "type": "multipart/mixed",
            "header:X-Part-Root": " yes",
            "subParts": [
                {"partId": "1", "type": "text/plain", "language": ["en", "fr"]},
                {
                    "blobId": "png",
                    "type": "image/png",
                    "disposition": "attachment",
                    "name": "pic.png",
                    "cid": "pic@x",
                    "location": "https://example.org/pic.png",
                    "header:Content-Description:asText": "A picture",
                },
                {"blobId": "note", "type": "text/csv", "charset": "iso-8859-1"},
            ],
        },
        "bodyValues": {"1": {"value": "body\n"}},
    }
    message = roundtrip(email)
    structure = message.body_structure()
    assert shape(structure) == ["multipart/mixed", "text/plain", "image/png", "text/csv"]
    assert message.header("X-Part-Root") == " yes"
    plain, image, csv = structure["subParts"]
    assert plain["language"] == ["en", "fr"]
    assert message.body_value(plain["partId"])["value"] == "body\n"
    assert {k: image[k] for k in ("disposition", "name", "cid", "location")} == {
        "disposition": "attachment",
        "name": "pic.png",
        "cid": "pic@x",
        "location": "https://example.org/pic.png",
    }
    description = [h["value"] for h in image["headers"] if h["name"] == "Content-Description"]
    assert description == [" A picture"]
    assert message.part_content(image["partId"]) == PNG
    assert csv["charset"] == "iso-8859-1"
    assert message.part_content(csv["partId"]) == BLOBS["note"]


def test_no_body_gives_empty_text() -> None:
    message = roundtrip({"subject": "empty"})
    assert message.body_structure()["type"] == "text/plain"
    assert text(message, message.text_body()) == [""]  # no body: empty text, nothing added


@pytest.mark.parametrize(
    "value", ["no break", "one break\n", "two\n\n", "", "a\r\nb\rc", "é" * 600, "x" * 1200]
)
def test_text_reads_back_exactly_and_stays_so(value: str) -> None:
    """Issue 9: no line break is added to a text body; saved and read back again and again,
    it stays the same (line breaks read back as LF)."""
    expected = value.replace("\r\n", "\n").replace("\r", "\n")
    for _ in range(3):
        message = roundtrip(dict(PLAIN, bodyValues={"t": {"value": value}}))
        (value,) = text(message, message.text_body())
        assert value == expected


def test_html_only_with_attachment() -> None:
    email = {
        "htmlBody": [{"partId": "h"}],
        "attachments": [{"blobId": "note", "type": "text/plain"}],
        "bodyValues": {"h": {"value": "<b>hi</b>\n"}},
    }
    message = roundtrip(email)
    assert shape(message.body_structure()) == ["multipart/mixed", "text/html", "text/plain"]
    assert text(message, message.html_body()) == ["<b>hi</b>\n"]
    assert [a["disposition"] for a in message.attachments()] == ["attachment"]


INVALID: list[tuple[dict[str, Any], list[str]]] = [
    (dict(PLAIN, bodyStructure={"partId": "t"}), ["textBody"]),
    (dict(PLAIN, textBody=[{"partId": "t"}, {"partId": "t"}]), ["textBody"]),
    (dict(PLAIN, textBody=[{"partId": "t", "type": "text/html"}]), ["textBody/0/type"]),
    (dict(PLAIN, htmlBody=[{"partId": "t", "type": "text/plain"}]), ["htmlBody/0/type"]),
    (dict(PLAIN, htmlBody=[]), ["htmlBody"]),
    (dict(PLAIN, textBody=[{"partId": "nope"}]), ["textBody/0/partId"]),
    (
        dict(PLAIN, textBody=[{"partId": "t", "blobId": "bin"}]),
        ["textBody/0/partId", "textBody/0/blobId"],
    ),
    (dict(PLAIN, textBody=[{"partId": "t", "charset": "utf-8"}]), ["textBody/0/charset"]),
    (dict(PLAIN, textBody=[{"partId": "t", "size": 3}]), ["textBody/0/size"]),
    (dict(PLAIN, textBody=[{}]), ["textBody/0/partId"]),
    (
        dict(PLAIN, bodyValues={"t": {"value": "x", "isTruncated": True}}),
        ["bodyValues/t/isTruncated"],
    ),
    (
        dict(PLAIN, bodyValues={"t": {"value": "x", "isEncodingProblem": True}}),
        ["bodyValues/t/isEncodingProblem"],
    ),
    (dict(PLAIN, **{"header:Subject:asText": "x"}), ["subject", "header:Subject:asText"]),
    (dict(PLAIN, **{"header:FROM": " x@y"}), ["from", "header:FROM"]),
    (
        dict(PLAIN, **{"header:X-A": " 1", "header:x-a:asText": "2"}),
        ["header:X-A", "header:x-a:asText"],
    ),
    (dict(PLAIN, **{"header:Content-Type": " text/plain"}), ["header:Content-Type"]),
    (dict(PLAIN, **{"header:Content-Language:asText": "en"}), ["header:Content-Language:asText"]),
    (dict(PLAIN, headers=[{"name": "X", "value": "y"}]), ["headers"]),
    (dict(PLAIN, **{"header:From:asText": "x"}), ["header:From:asText"]),
    (dict(PLAIN, **{"header:Subject:asAddresses": []}), ["header:Subject:asAddresses"]),
    (dict(PLAIN, **{"header:X-A:asBogus": "x"}), ["header:X-A:asBogus"]),
    (dict(PLAIN, **{"header:X A": " x"}), ["header:X A"]),
    (dict(PLAIN, **{"header:X-Raw": " a\nb"}), ["header:X-Raw"]),
    (dict(PLAIN, **{"header:X-Raw": " a\r\nb"}), ["header:X-Raw"]),
    (dict(PLAIN, **{"header:X-Raw": " " + "x" * 1000}), ["header:X-Raw"]),
    (dict(PLAIN, **{"header:X-Text:asText": "a\r\n b"}), ["header:X-Text:asText"]),
    (dict(PLAIN, subject="two\nlines"), ["subject"]),
    (dict(PLAIN, sentAt="yesterday"), ["sentAt"]),
    (
        dict(PLAIN, textBody=[{"partId": "t", "header:Content-Transfer-Encoding": " base64"}]),
        ["textBody/0/header:Content-Transfer-Encoding"],
    ),
    (
        dict(PLAIN, attachments=[{"blobId": "bin", "cid": "a", "header:Content-ID": " <b>"}]),
        ["attachments/0/cid", "attachments/0/header:Content-ID"],
    ),
    (dict(PLAIN, attachments=[{"blobId": "bin", "headers": []}]), ["attachments/0/headers"]),
    (
        {"bodyStructure": {"type": "multipart/mixed", "subParts": []}},
        ["bodyStructure/subParts"],
    ),
    (
        {
            "bodyStructure": {
                "type": "multipart/mixed",
                "partId": "1",
                "subParts": [{"partId": "1"}],
            }
        },
        ["bodyStructure/partId"],
    ),
    (
        {
            "bodyStructure": {
                "type": "multipart/mixed",
                "subParts": [{"partId": "1", "type": "image/png"}],
            },
            "bodyValues": {"1": {"value": "x"}},
        },
        ["bodyStructure/subParts/0/type"],
    ),
    (
        {
            "header:X-A": " top",
            "bodyStructure": {"partId": "1", "header:X-A": " part"},
            "bodyValues": {"1": {"value": "x"}},
        },
        ["bodyStructure"],
    ),
]


@pytest.mark.parametrize(("email", "properties"), INVALID)
def test_invalid_properties(email: dict[str, Any], properties: list[str]) -> None:
    failure = error(email)
    assert failure.kind == "invalidProperties"
    assert failure.properties == properties
    assert failure.not_found == []


def test_blob_not_found_lists_every_missing_blob() -> None:
    email = dict(
        PLAIN,
        attachments=[
            {"blobId": "gone1", "type": "image/png"},
            {"blobId": "bin"},
            {"blobId": "gone2"},
            {"blobId": "gone1"},
        ],
    )
    failure = error(email)
    assert failure.kind == "blobNotFound"
    assert failure.not_found == ["gone1", "gone2"]
    assert failure.properties == [
        "attachments/0/blobId",
        "attachments/2/blobId",
        "attachments/3/blobId",
    ]


def test_blob_not_found_in_body_structure() -> None:
    email = {"bodyStructure": {"type": "multipart/mixed", "subParts": [{"blobId": "x"}]}}
    failure = error(email)
    assert (failure.kind, failure.not_found) == ("blobNotFound", ["x"])
    assert failure.properties == ["bodyStructure/subParts/0/blobId"]


@pytest.mark.parametrize(
    "inner",
    [b"From: a@b\r\nSubject: in\r\n\r\nbody\r\n", b"From: a@b\r\nSubject: in\r\n\r\n\xc3\xa9\r\n"],
)
def test_message_rfc822_attachment_byte_exact(inner: bytes) -> None:
    email = dict(PLAIN, attachments=[{"blobId": "m", "type": "message/rfc822"}])
    message = parse_message(compose_message(email, {"m": inner}.get, now=NOW, hostname="h"))
    (attached,) = message.attachments()
    assert (attached["type"], attached["disposition"]) == ("message/rfc822", "attachment")
    assert message.part_content(attached["partId"]) == inner


def test_attachment_disposition_from_header_property() -> None:
    header = {"header:Content-Disposition:asText": "inline; filename=x.bin"}
    message = roundtrip(dict(PLAIN, attachments=[{"blobId": "bin", **header}]))
    (attached,) = message.attachments()
    assert (attached["type"], attached["disposition"], attached["name"]) == (
        "application/octet-stream",
        "inline",
        "x.bin",
    )
