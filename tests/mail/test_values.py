"""bodyValues and maxBodyValueBytes truncation (RFC 8621 §4.1.4, §4.2)."""

from __future__ import annotations

import pytest

from jmapd.mail import parse_message
from jmapd.mail.values import truncate


def message(body: bytes, content_type: bytes = b"text/plain; charset=utf-8") -> bytes:
    return b"Content-Type: " + content_type + b"\r\n\r\n" + body


def test_crlf_becomes_lf_and_lone_cr_stays() -> None:
    value = parse_message(message(b"a\r\nb\rc\n")).body_value("1")
    assert value == {"value": "a\nb\rc\n", "isEncodingProblem": False, "isTruncated": False}


@pytest.mark.parametrize("max_bytes", [None, 0])
def test_no_limit(max_bytes: int | None) -> None:
    value = parse_message(message(b"x" * 10000)).body_value("1", max_bytes)
    assert value["value"] == "x" * 10000
    assert value["isTruncated"] is False


def test_limit_not_reached_or_exactly_reached() -> None:
    msg = parse_message(message("héllo".encode()))  # 6 octets
    assert msg.body_value("1", 6)["isTruncated"] is False
    assert msg.body_value("1", 7) == msg.body_value("1")
    assert msg.body_value("1", 5) == {
        "value": "h\u00e9ll",
        "isEncodingProblem": False,
        "isTruncated": True,
    }


@pytest.mark.parametrize(
    ("text", "max_bytes", "cut"),
    [
        ("abc", 2, "ab"),
        ("aé", 2, "a"),  # é is two octets: never cut mid-character (§4.2 MUST)
        ("aé", 3, "aé"),
        ("a€b", 2, "a"),
        ("a€b", 3, "a"),
        ("a€b", 4, "a€"),
        ("a😀b", 4, "a"),  # four-octet character
        ("a😀b", 5, "a😀"),
        ("é", 1, ""),
    ],
)
def test_truncate_at_character_boundaries(text: str, max_bytes: int, cut: str) -> None:
    truncated, was = truncate(text, max_bytes, is_html=False)
    assert truncated == cut
    assert len(truncated.encode()) <= max_bytes
    assert was is (cut != text)


@pytest.mark.parametrize(
    ("html", "max_bytes", "cut"),
    [
        ('<p>Hello <a href="https://example.com">x</a></p>', 20, "<p>Hello "),  # not in a tag
        (
            '<p>Hello <a href="https://example.com">x</a></p>',
            41,
            '<p>Hello <a href="https://example.com">x',
        ),
        ("<p>Hello</p>", 8, "<p>Hello"),
        ("<p>Hello</p>", 2, ""),
        ("a > b and c", 5, "a > b"),  # a lone ">" is text
    ],
)
def test_html_is_not_cut_inside_a_tag(html: str, max_bytes: int, cut: str) -> None:
    assert truncate(html, max_bytes, is_html=True) == (cut, True)


def test_html_part_value_is_the_html_itself() -> None:
    msg = parse_message(message(b"<p>Hi &amp; <b>bye</b></p>", b"text/html"))
    assert msg.body_value("1")["value"] == "<p>Hi &amp; <b>bye</b></p>"
    assert msg.body_value("1", 14)["value"] == "<p>Hi &amp; "
    assert msg.body_value("1", 16)["value"] == "<p>Hi &amp; <b>b"


def test_value_of_a_truncated_undeclared_8bit_part() -> None:
    msg = parse_message(message("Grüße".encode(), b"text/plain"))
    assert msg.body_value("1", 4) == {
        "value": "Gr\u00fc",
        "isEncodingProblem": False,
        "isTruncated": True,
    }


def test_unknown_part_id() -> None:
    with pytest.raises(KeyError):
        parse_message(message(b"x")).body_value("2")
