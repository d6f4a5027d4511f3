"""Content-Type / Content-Disposition values and parameters (RFC 2045 §5.1, RFC 2231)."""

from __future__ import annotations

import pytest

from jmapd.mail.params import parse_value


@pytest.mark.parametrize(
    ("raw", "value", "params"),
    [
        (" text/plain", "text/plain", {}),
        (' Text/HTML; Charset="UTF-8"', "text/html", {"charset": "UTF-8"}),
        (
            " text/plain (plain text) ; charset=us-ascii (comment)",
            "text/plain",
            {"charset": "us-ascii"},
        ),
        (' multipart/mixed;\r\n boundary="a;b=c"', "multipart/mixed", {"boundary": "a;b=c"}),
        (' x/y; a = "spaced value" ; b=1', "x/y", {"a": "spaced value", "b": "1"}),
        (' x/y; a="\\"q\\""', "x/y", {"a": '"q"'}),
        (" x/y; noequals; a=1", "x/y", {"a": "1"}),
        (" x/y; a=1; A=2", "x/y", {"a": "1"}),  # first wins, names case-insensitive
        (' x/y; a="unterminated', "x/y", {"a": "unterminated"}),
        ("", "", {}),
        # RFC 2231 §3: continuations, in any order
        (' x/y; a*0="one "; a*2=three; a*1="two "', "x/y", {"a": "one two three"}),
        # §4: charset and language
        (
            " attachment; filename*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
            "attachment",
            {"filename": "This is ***fun***"},
        ),
        (" attachment; filename*=iso-8859-1''caf%E9.txt", "attachment", {"filename": "café.txt"}),
        (" attachment; filename*=''caf%C3%A9.txt", "attachment", {"filename": "café.txt"}),
        # §4.1: charset only on the first section; later sections plain or encoded
        (
            " x/y; t*0*=us-ascii'en'This%20is%20even%20more%20; t*1*=%2A%2A%2Afun%2A%2A%2A%20;"
            ' t*2="isn\'t it!"',
            "x/y",
            {"t": "This is even more ***fun*** isn't it!"},
        ),
        (" x/y; f*0*=UTF-8''%E2%82; f*1*=%AC.txt", "x/y", {"f": "€.txt"}),  # octets joined first
        (" x/y; f=\"plain\"; f*=UTF-8''%E2%9C%93", "x/y", {"f": "✓"}),  # RFC 2231 wins
        (" x/y; f*=UTF-8''caf%C3", "x/y", {"f": "caf\ufffd"}),
        (' x/y; name="Résumé.pdf"', "x/y", {"name": "Résumé.pdf"}),  # raw UTF-8 (RFC 6532)
    ],
)
def test_parse_value(raw: str, value: str, params: dict[str, str]) -> None:
    assert parse_value(raw) == (value, params)
