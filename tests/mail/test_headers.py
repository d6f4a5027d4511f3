"""Header field forms (RFC 8621 §4.1.2) and header:{name}:as{form}:all lookups (§4.1.3)."""

from __future__ import annotations

import pytest

from jmapd.mail import form_allowed, parse_message
from jmapd.mail.headers import message_ids_form, raw_form, text_form, urls_form


def header(raw: bytes, name: str, form: str = "Raw", all: bool = False) -> object:
    return parse_message(raw + b"\r\n\r\nbody\r\n").header(name, form, all)


# §4.1.2.1 Raw


def test_raw_keeps_everything_after_the_colon() -> None:
    assert header(b"Subject:  two spaces\r\n\tand a fold ", "Subject") == (
        "  two spaces\r\n\tand a fold "
    )
    assert header(b"Subject:no space", "subject") == "no space"
    assert header(b"Subject:", "Subject") == ""


def test_raw_replaces_invalid_utf8_and_drops_nul() -> None:
    assert header(b"X-A: caf\xc3\xa9 caf\xe9 a\x00b", "X-A") == " café caf\ufffd ab"
    assert raw_form("caf\udce9") == "caf\ufffd"


def test_last_instance_all_instances_and_absent() -> None:
    raw = b"X-N: one\r\nx-n: two\r\nX-N: three"
    assert header(raw, "x-N") == " three"
    assert header(raw, "X-N", all=True) == [" one", " two", " three"]
    assert header(raw, "X-Other") is None
    assert header(raw, "X-Other", "Addresses", all=True) == []
    assert header(raw, "X-N", "Text", all=True) == ["one", "two", "three"]


def test_unknown_form_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        header(b"X-A: a", "X-A", "Bogus")


# §4.1.2.2 Text


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (" =?UTF-8?Q?caf=C3=A9?= =?UTF-8?Q?_au_lait?=", "café au lait"),  # adjacent words
        (" =?utf-8?b?Y2Fmw6k=?=", "café"),  # B, lowercase labels
        (" Hello\r\n World", "Hello World"),  # unfolded
        ("   leading spaces", "leading spaces"),  # SP removed at the start...
        (" trailing  ", "trailing  "),  # ...not at the end
        ("\tleading tab", "\tleading tab"),  # only SP characters (step 3)
        (" a =?UTF-8?Q?b?=c", "a =?UTF-8?Q?b?=c"),  # not a separate word: not decoded
        (" (=?UTF-8?Q?b?=)", "(=?UTF-8?Q?b?=)"),
        (" =?UTF-8?Q?a?=  \r\n   =?UTF-8?Q?b?=", "ab"),  # white space between words goes
        (" =?UTF-8?Q?a?= x =?UTF-8?Q?b?=", "a x b"),
        (" =?UTF-8?Q?a b?=", "=?UTF-8?Q?a b?="),  # space inside: not an encoded word
        (" =?UTF-8?X?abc?=", "=?UTF-8?X?abc?="),  # unknown encoding
        (" =?no-such-charset?Q?abc?=", "=?no-such-charset?Q?abc?="),  # unknown charset
        (" =?UTF-8*fr?Q?caf=C3=A9?=", "café"),  # RFC 2231 §5 language suffix
        (" =?UTF-8?B?####?=", "\ufffd"),  # a decoding that fails
        (" =?UTF-8?Q?caf=E9?=", "caf\ufffd"),  # octets invalid in the charset
        (" =?UTF-8?Q?tab=09and=0Dcr?=", "tabandcr"),  # encoded controls dropped
        (" =?ISO-8859-1?Q?a=E9?= =?UTF-8?Q?=C3=A9?=", "aéé"),  # two charsets
        (" e\u0301", "\u00e9"),  # NFC
    ],
)
def test_text_form(raw: str, text: str) -> None:
    assert text_form(raw) == text


def test_text_form_of_a_message_header() -> None:
    subject = b"Subject: =?UTF-8?Q?caf=C3=A9?= =?UTF-8?Q?_au_lait?="
    assert header(subject, "Subject", "Text") == "café au lait"
    assert parse_message(subject + b"\r\n\r\n").properties()["subject"] == "café au lait"


# §4.1.2.5 MessageIds


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        (" <a@example.com>", ["a@example.com"]),
        (" <a@x>\r\n <b@y>  <c@z>", ["a@x", "b@y", "c@z"]),
        (" (comment) <a@x> (another <not@id>)", ["a@x"]),
        (" <a @ x>", ["a@x"]),  # obsolete CFWS inside the id (RFC 5322 §4.5.4)
        (" Your message of Monday <a@x>", ["a@x"]),  # obs-in-reply-to phrase
        (" a@x", None),  # no angle brackets: parsing fails
        ("", None),
        (" <>", None),
    ],
)
def test_message_ids_form(raw: str, ids: list[str] | None) -> None:
    assert message_ids_form(raw) == ids


# §4.1.2.6 Date (more cases in test_dates.py)


def test_date_form() -> None:
    assert header(b"Date: Fri, 21 Nov 1997 09:55:06 -0600", "Date", "Date") == (
        "1997-11-21T09:55:06-06:00"
    )
    assert header(b"Date: yesterday", "Date", "Date") is None


# §4.1.2.7 URLs


@pytest.mark.parametrize(
    ("raw", "urls"),
    [
        (
            " <mailto:list@host.com?subject=help> (List Instructions)",
            ["mailto:list@host.com?subject=help"],
        ),
        (
            " <http://www.host.com/list/>, <mailto:list-request@host.com?subject=info>",
            ["http://www.host.com/list/", "mailto:list-request@host.com?subject=info"],
        ),
        (
            " <ftp://ftp.host.com/list.txt> (FTP),\r\n <mailto:list@host.com?subject=help>",
            ["ftp://ftp.host.com/list.txt", "mailto:list@host.com?subject=help"],
        ),
        (" <http://example.com/a\r\n  b>", ["http://example.com/ab"]),  # folding inside a URL
        (" NO (posting not allowed on this list)", None),  # RFC 2369 §3.4
    ],
)
def test_urls_form(raw: str, urls: list[str] | None) -> None:
    assert urls_form(raw) == urls


# Which forms may be fetched for which fields (§4.1.2.*)


@pytest.mark.parametrize(
    ("name", "form", "allowed"),
    [
        ("Subject", "Text", True),
        ("subject", "Addresses", False),
        ("From", "Addresses", True),
        ("From", "GroupedAddresses", True),
        ("From", "Text", False),
        ("From", "Date", False),  # the RFC's own example of a forbidden form
        ("Resent-Reply-To", "Addresses", True),
        ("Message-ID", "MessageIds", True),
        ("References", "Text", False),
        ("Resent-Date", "Date", True),
        ("List-Post", "URLs", True),
        ("List-Post", "Text", False),
        ("List-Id", "Text", True),  # RFC 2919, not RFC 2369: any form
        ("X-Custom", "Date", True),
        ("X-Custom", "URLs", True),
        ("Received", "Text", False),
        ("Received", "Raw", True),
        ("X-Custom", "Bogus", False),
    ],
)
def test_form_allowed(name: str, form: str, allowed: bool) -> None:
    assert form_allowed(name, form) is allowed
