"""preview (RFC 8621 §4.1.4), search text, and HTML to text."""

from __future__ import annotations

import random
import re

from jmapd.mail.html import html_to_text

from .build import leaf, multi, parse


def test_preview_collapses_white_space_and_controls() -> None:
    msg = parse(leaf("text/plain", "  Hello,\r\n\r\n\tworld \x00\x07 again\u00a0!  "))
    assert msg.preview() == "Hello, world again !"


def test_preview_is_at_most_256_characters() -> None:
    msg = parse(leaf("text/plain; charset=utf-8", "é" * 300))
    assert msg.preview() == "é" * 256
    words = parse(leaf("text/plain", "word " * 100)).preview()
    assert len(words) <= 256
    assert not words.endswith(" ")


def test_preview_reads_only_the_start_but_is_the_collapsed_whole() -> None:
    """The preview collapses only as much of a long part as it needs; it is what collapsing
    the whole text gives: random text, its white space in runs of all lengths, also
    across the point where reading stops."""
    rng = random.Random(3)
    for _ in range(300):
        pieces = [rng.choice(["w", "wörd", "x" * rng.randint(1, 300)]) for _ in range(400)]
        gaps = [rng.choice([" ", "\r\n", " " * rng.randint(1, 2000), "\t\x01 "]) for _ in pieces]
        text = "".join(p + g for p, g in zip(pieces, gaps, strict=True))[: rng.randint(0, 20000)]
        whole = re.sub(r"[\s\x00-\x1f\x7f-\x9f]+", " ", text).strip()[:256].rstrip()
        assert parse(leaf("text/plain", text)).preview() == whole


def test_preview_from_html_when_there_is_no_text_part() -> None:
    html = "<html><head><title>T</title><style>p {}</style></head><body><p>Hi&nbsp;<b>there</b></p>"
    assert parse(multi("alternative", leaf("text/html", html))).preview() == "Hi there"


def test_preview_prefers_the_text_part() -> None:
    msg = parse(multi("alternative", leaf("text/plain", "plain"), leaf("text/html", "<p>html</p>")))
    assert msg.preview() == "plain"


def test_preview_joins_text_body_parts_and_skips_images() -> None:
    entity = multi("mixed", leaf("text/plain", "one"), leaf("image/png"), leaf("text/plain", "two"))
    assert parse(entity).preview() == "one two"


def test_preview_of_a_message_without_text() -> None:
    assert parse(leaf("image/png")).preview() == ""
    assert parse(multi("mixed", leaf("application/pdf"))).preview() == ""


def test_search_text() -> None:
    entity = multi(
        "mixed",
        multi(
            "alternative", leaf("text/plain", "plain body"), leaf("text/html", "<p>html body</p>")
        ),
        leaf("text/csv; name=a.csv", "a,b", Content_Disposition="attachment"),
        leaf(
            "text/html; name=b.html",
            '<b>attached</b> page <img src="x.png" alt="a chart" title="Sales">',
            Content_Disposition="attachment",
        ),
        leaf("image/png; name=c.png", "iVBORw0KGgo=", Content_Transfer_Encoding="base64"),
    )
    # the HTML alternative too (a client may show either), and alt and title (§4.4.1)
    assert parse(entity).search_text() == (
        "plain body\n\nhtml body\n\na,b\n\nattached page  a chart  Sales"
    )


def test_html_to_text() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>Title</title><style>p{color:red}</style>"
        "<script>alert(1)</script></head><body><h1>Head</h1><p>One &amp; <i>two</i></p>"
        "<ul><li>a</li><li>b</li></ul><table><tr><td>c</td><td>d</td></tr></table>"
        "<!-- hidden --><p>Line<br>break</p></body></html>"
    )
    assert html_to_text(html) == "Head\n\nOne & two\n\na\nb\n\nc d\n\nLine\nbreak"


def test_html_to_text_without_closing_head() -> None:
    assert html_to_text("<head><title>x</title><body>Body") == "Body"


def test_html_to_text_is_not_thrown_by_malformed_html() -> None:
    for html in [
        "<![foo[ bar ]]> after",  # raises AssertionError inside html.parser on Python 3.11
        "<![if !mso]>shown<![endif]>",
        "text <a href='unterminated",
        "</" * 50_000,  # quadratic in html.parser without the defusing
        "<a" + " b" * 50_000,
        "<" * 100_000 + ">",
        "&#xffffffff; &#0; &bogus;",
    ]:
        assert isinstance(html_to_text(html), str)
    assert html_to_text("<![foo[ bar ]]> after").endswith("after")
