"""Content-Transfer-Encoding decoding (RFC 2045 §6)."""

from __future__ import annotations

import base64
import os

import pytest

from jmapd.mail.transfer import decode


def test_base64_round_trip() -> None:
    data = os.urandom(5000)
    assert decode(base64.encodebytes(data).replace(b"\n", b"\r\n"), "base64") == (data, False)


@pytest.mark.parametrize(
    ("encoded", "decoded", "problem"),
    [
        (b"SGVsbG8=", b"Hello", False),
        (b"SGVsbG8", b"Hello", False),  # padding missing
        (b"SGVs\r\n bG8=\r\n", b"Hello", False),  # white space anywhere
        (b"SGVsbG8=SGk=", b"HelloHi", False),  # separately padded chunks
        (b"SGVs!bG8=", b"Hello", True),  # junk outside the alphabet is skipped, and flagged
        (b"SGVsbG8gd", b"Hello ", True),  # one character too many
        (b"", b"", False),
        (b"====", b"", False),
    ],
)
def test_base64_tolerance(encoded: bytes, decoded: bytes, problem: bool) -> None:
    assert decode(encoded, "base64") == (decoded, problem)


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"caf=C3=A9", "café".encode()),
        (b"soft=\r\nbreak", b"softbreak"),
        (b"soft=\nbreak", b"softbreak"),
        (b"trailing   \r\nspace=20\r\n", b"trailing\r\nspace \r\n"),  # §6.7 rule 3
        (b"tab\t\nlf \t\nend \t", b"tab\nlf\nend"),  # and with bare LFs, and at the end
        (b"mid line\t space", b"mid line\t space"),  # only at the end of a line
        (b"bad =ZZ sequence", b"bad =ZZ sequence"),  # kept literally
        (b"a=3Db", b"a=b"),
    ],
)
def test_quoted_printable(encoded: bytes, decoded: bytes) -> None:
    assert decode(encoded, "quoted-printable") == (decoded, False)


@pytest.mark.parametrize("encoding", ["", "7bit", "8bit", "binary"])
def test_identity(encoding: str) -> None:
    assert decode(b"\x00\xff raw", encoding) == (b"\x00\xff raw", False)


def test_unknown_encoding_passes_octets_through_flagged() -> None:
    assert decode(b"begin 644 x\n", "x-uuencode") == (b"begin 644 x\n", True)
