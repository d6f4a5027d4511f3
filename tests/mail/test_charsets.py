"""Charset labels and decoding (RFC 8621 §4.1.4 bodyValues)."""

from __future__ import annotations

import pytest

from jmapd.mail.charsets import codec_for, decode


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        (None, "ascii"),
        ("", "ascii"),
        ("US-ASCII", "ascii"),
        ('"utf-8"', "utf-8"),
        ("UTF8", "utf-8"),
        ("utf-8*en", "utf-8"),
        ("unicode-1-1-utf-8", "utf-8"),
        ("ISO-8859-1", "cp1252"),  # WHATWG: decoded as the superset
        ("latin1", "cp1252"),
        ("ISO-8859-15", "iso8859-15"),
        ("windows-1252", "cp1252"),
        ("gb2312", "gb18030"),
        ("GBK", "gb18030"),
        ("Shift_JIS", "cp932"),
        ("ISO-2022-JP", "iso2022_jp_ext"),
        ("ks_c_5601-1987", "cp949"),
        ("big5", "big5hkscs"),
        ("KOI8-R", "koi8-r"),
        ("x-mac-roman", "mac-roman"),
        ("x-unknown", None),
        ("base64", None),  # Python codecs that are not charsets
        ("rot13", None),
        ("unicode_escape", None),
        ("idna", None),
        ("a" * 100, None),
    ],
)
def test_codec_for(label: str | None, codec: str | None) -> None:
    assert codec_for(label) == codec


@pytest.mark.parametrize(
    ("octets", "label", "text", "problem"),
    [
        (b"plain", None, "plain", False),
        ("café".encode(), None, "café", False),  # undeclared 8-bit: UTF-8 first
        ("café".encode("cp1252"), "us-ascii", "café", False),  # then Windows-1252
        (b"\x81\x8d", None, "\ufffd\ufffd", True),  # undefined even in Windows-1252
        ("café".encode(), "utf-8", "café", False),
        (b"caf\xe9", "utf-8", "caf\ufffd", True),
        (b"\x80", "iso-8859-1", "€", False),
        ("你好".encode("gb18030"), "gb2312", "你好", False),
        ("Привет".encode("koi8-r"), "koi8-r", "Привет", False),
        ("café".encode(), "x-unknown", "café", True),  # unknown charset: guessed and flagged
        (b"\x1b$B$3$s\x1b(B", "iso-2022-jp", "こん", False),
        (b"\x1b(I1\x1b(B", "iso-2022-jp", "\uff71", False),  # half-width katakana
    ],
)
def test_decode(octets: bytes, label: str | None, text: str, problem: bool) -> None:
    assert decode(octets, label) == (text, problem)
