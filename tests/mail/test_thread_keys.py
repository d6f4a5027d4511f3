"""Threading keys for the server guide's "Refs to Thread" algorithm."""

from __future__ import annotations

import pytest

from jmapd.mail import parse_message
from jmapd.mail.thread_keys import normalise_subject


@pytest.mark.parametrize(
    ("subject", "normalised"),
    [
        ("Hello World", "hello world"),
        ("Re: Hello World", "hello world"),
        ("RE: Re: re:Hello   World ", "hello world"),
        ("Fwd: Re: Hello World", "hello world"),
        ("FW: hello world", "hello world"),
        ("AW: WG: Hello World", "hello world"),  # German
        ("SV: VS: Hello World", "hello world"),  # Scandinavian
        ("RE : Hello World", "hello world"),  # French spacing
        ("Re[2]: Re^3: Re(4): Hello World", "hello world"),
        ("[list] Re: [list] Hello World", "hello world"),
        ("Re: [PATCH v2 1/3] Hello World", "hello world"),
        ("\u56de\u590d\uff1aHello World", "hello world"),  # Chinese, full-width colon
        ("Meeting: Hello World", "hello world"),  # the guide strips any word and colon
        ("10:30 Hello World", "10:30 hello world"),  # but not a colon inside a word
        ("Hello [World]", "hello"),  # the guide strips anything in brackets
        ("HELLO\tWORLD", "hello world"),
        ("Straße", "strasse"),  # case folding, not just lowercasing
        ("Re:", ""),
        ("", ""),
    ],
)
def test_normalise_subject(subject: str, normalised: str) -> None:
    assert normalise_subject(subject) == normalised


def test_message_ids_in_order_without_repeats() -> None:
    raw = (
        b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n"
        b"Subject: =?UTF-8?Q?Re=3A_Caf=C3=A9?=\r\n\r\n"
    )
    keys = parse_message(raw).threading_keys()
    assert keys.message_ids == ("c@x", "b@x", "a@x")
    assert keys.subject == "café"


def test_no_ids_no_subject() -> None:
    keys = parse_message(b"From: a@x\r\n\r\n").threading_keys()
    assert (keys.message_ids, keys.subject) == ((), "")
