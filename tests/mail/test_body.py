"""EmailBodyPart properties and the textBody/htmlBody/attachments algorithm (RFC 8621 §4.1.4)."""

from __future__ import annotations

import base64
from typing import Any

from jmapd.mail.mime import MAX_DEPTH

from .build import ids, leaf, multi, parse

PNG = "iVBORw0KGgo="


def lists(entity: str) -> tuple[list[Any], list[Any], list[Any], bool]:
    msg = parse(entity)
    return ids(msg.text_body()), ids(msg.html_body()), ids(msg.attachments()), msg.has_attachment()


# Properties of a part


def test_part_properties() -> None:
    msg = parse(
        leaf(
            "Image/PNG (a picture); name=ignored.png",
            PNG,
            Content_Transfer_Encoding="BASE64",
            Content_Disposition='ATTACHMENT; filename="logo.png"',
            Content_ID=" < logo@example.com > (the logo)",
            Content_Language="en, de-CH (Swiss German)",
            Content_Location="https://example.com/images/\r\n logo.png",
        )
    )
    part = msg.body_structure()
    assert part["type"] == "image/png"
    assert part["name"] == "logo.png"  # the filename parameter wins over the name parameter
    assert part["disposition"] == "attachment"
    assert part["cid"] == "logo@example.com"
    assert part["language"] == ["en", "de-CH"]
    assert part["location"] == "https://example.com/images/logo.png"
    assert part["charset"] is None
    assert part["size"] == 8
    assert msg.part_content("1") == b"\x89PNG\r\n\x1a\n"


def test_defaults_without_content_type() -> None:
    part = parse(leaf(None, "text")).body_structure()
    assert (part["type"], part["charset"], part["name"], part["disposition"]) == (
        "text/plain",
        "us-ascii",
        None,
        None,
    )
    assert (part["cid"], part["language"], part["location"]) == (None, None, None)


def test_invalid_content_type_means_text_plain() -> None:
    # RFC 2045 §5.2: a syntactically invalid Content-Type is taken as text/plain.
    assert parse(leaf("text")).body_structure()["type"] == "text/plain"
    assert parse(leaf("/html; charset=utf-8")).body_structure()["charset"] == "utf-8"


def test_first_content_type_decides() -> None:
    entity = "Content-Type: text/html\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\nhi"
    assert parse(entity).body_structure()["type"] == "text/html"


def test_charset_of_non_text_parts() -> None:
    assert parse(leaf("application/json")).body_structure()["charset"] is None
    assert parse(leaf("application/json; charset=utf-8")).body_structure()["charset"] == "utf-8"


def test_digest_parts_default_to_message_rfc822() -> None:
    msg = parse(multi("digest", leaf(None, "Subject: one\r\n\r\nfirst"), leaf("text/plain")))
    first, second = msg.body_structure()["subParts"]
    assert (first["type"], first["charset"]) == ("message/rfc822", None)
    assert msg.part_content("1") == b"Subject: one\r\n\r\nfirst"
    assert second["type"] == "text/plain"
    assert ids(msg.attachments()) == ["1"]


def test_message_rfc822_is_not_recursed_into_even_if_base64() -> None:
    inner = (
        "Subject: inner\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\nin\r\n--z--"
    )
    encoded = base64.b64encode(inner.encode()).decode()
    msg = parse(multi("mixed", leaf("message/rfc822", encoded, Content_Transfer_Encoding="base64")))
    (part,) = msg.body_structure()["subParts"]
    assert (part["partId"], part["subParts"], part["size"]) == ("1", None, len(inner))
    assert msg.part_content("1") == inner.encode()


def test_part_ids_are_unique_and_only_multiparts_have_none() -> None:
    msg = parse(multi("mixed", leaf("text/plain"), multi("alternative", leaf("text/plain"))))
    root = msg.body_structure()
    inner = root["subParts"][1]
    assert (root["partId"], inner["partId"]) == (None, None)
    assert [root["subParts"][0]["partId"], inner["subParts"][0]["partId"]] == ["1", "2"]


def test_multipart_without_parts() -> None:
    msg = parse("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n")
    root = msg.body_structure()
    assert root["type"] == "multipart/mixed"
    assert root["partId"] is None
    assert all(p["partId"] is not None for p in root["subParts"])


def test_nesting_deeper_than_the_limit_is_kept_as_text() -> None:
    entity = leaf("text/plain", "deepest")
    for _ in range(MAX_DEPTH + 20):
        entity = multi("mixed", entity)
    msg = parse(entity)
    depth, part = 0, msg.body_structure()
    while part["subParts"]:
        depth, part = depth + 1, part["subParts"][0]
    assert depth == MAX_DEPTH + 1
    assert part["type"] == "text/plain"
    assert "deepest" in msg.body_value(part["partId"])["value"]


# textBody, htmlBody, attachments: the §4.1.4 algorithm


def test_alternative() -> None:
    entity = multi("alternative", leaf("text/plain"), leaf("text/html"))
    assert lists(entity) == (["1"], ["2"], [], False)


def test_alternative_with_only_html_gives_html_to_text_body() -> None:
    assert lists(multi("alternative", leaf("text/html"))) == (["1"], ["1"], [], False)


def test_alternative_with_only_text_gives_text_to_html_body() -> None:
    assert lists(multi("alternative", leaf("text/plain"))) == (["1"], ["1"], [], False)


def test_image_directly_in_alternative_is_an_attachment() -> None:
    entity = multi("alternative", leaf("text/plain"), leaf("text/html"), leaf("image/png"))
    assert lists(entity) == (["1"], ["2"], ["3"], True)


def test_inline_images_between_text_parts() -> None:
    entity = multi("mixed", leaf("text/plain"), leaf("image/png"), leaf("text/plain"))
    assert lists(entity) == (["1", "2", "3"], ["1", "2", "3"], [], False)


def test_named_text_part() -> None:
    first = multi("mixed", leaf("text/plain; name=a.txt"), leaf("text/plain"))
    assert lists(first) == (["1", "2"], ["1", "2"], [], False)  # the first part is body anyway
    later = multi("mixed", leaf("text/plain"), leaf("text/plain; name=a.txt"))
    assert lists(later) == (["1"], ["1"], ["2"], True)


def test_attachment_disposition_wins() -> None:
    entity = multi("mixed", leaf("text/plain", Content_Disposition="attachment"))
    assert lists(entity) == ([], [], ["1"], True)


def test_related_without_alternative() -> None:
    entity = multi(
        "related", leaf("text/html", '<img src="cid:i1">'), leaf("image/png", Content_ID="<i1>")
    )
    assert lists(entity) == (["1"], ["1"], ["2"], False)


def test_only_the_first_part_of_related_is_body() -> None:
    entity = multi("related", leaf("text/html"), leaf("text/plain"))
    assert lists(entity) == (["1"], ["1"], ["2"], True)


def test_where_the_pseudo_code_would_fail() -> None:
    # In the inner alternative the pseudo-code pushes the HTML part onto htmlBody, which the
    # enclosing mixed part has set to null (a TypeError in JavaScript). We leave the part out.
    entity = multi(
        "alternative",
        multi(
            "mixed", leaf("text/plain"), multi("alternative", leaf("text/plain"), leaf("text/html"))
        ),
    )
    assert lists(entity) == (["1", "2"], ["1", "2"], [], False)


# hasAttachment: our rule (see jmapd.mail.body.has_attachment)


def test_inline_pdf_is_an_attachment() -> None:
    entity = multi(
        "mixed",
        leaf("text/plain"),
        leaf("application/pdf", Content_Disposition='inline; filename="a.pdf"'),
    )
    assert lists(entity) == (["1"], ["1"], ["2"], True)


def test_unreferenced_related_image_is_an_attachment() -> None:
    entity = multi(
        "related", leaf("text/html", "<p>no image</p>"), leaf("image/png", Content_ID="<i>")
    )
    assert lists(entity)[3] is True


def test_image_referenced_by_content_location_is_not() -> None:
    entity = multi(
        "related",
        leaf("text/html", '<img src="https://example.com/a.png">'),
        leaf("image/png", Content_Location="https://example.com/a.png"),
    )
    assert lists(entity)[3] is False


def test_image_referenced_by_percent_encoded_cid_is_not() -> None:
    entity = multi(
        "related",
        leaf("text/html", '<img src="CID:a%26b@x">'),
        leaf("image/png", Content_ID="<a&b@x>"),
    )
    assert lists(entity)[3] is False


def test_inline_image_shown_in_the_text_version_is_not() -> None:
    entity = multi(
        "alternative",
        multi("mixed", leaf("text/plain"), leaf("image/png"), leaf("text/plain")),
        leaf("text/html"),
    )
    assert lists(entity) == (["1", "2", "3"], ["4"], ["2"], False)
