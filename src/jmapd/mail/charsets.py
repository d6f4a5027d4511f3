"""MIME charset labels to Python codecs, and best-effort decoding to text (RFC 8621 §4.1.4).

Every charset Python knows is accepted, under the labels mail uses for it. Labels whose content in
the wild is really a superset are decoded as the superset, as the WHATWG Encoding Standard does
(ISO-8859-1 as Windows-1252, GB2312 as GB18030, Shift_JIS as CP932, ...).

Undeclared 8-bit text (no charset, or "us-ascii" over 8-bit octets) is tried as UTF-8 (RFC 6532
mail is UTF-8, and other text almost never decodes as UTF-8 by accident), then as Windows-1252,
which decodes all but five octets and is what undeclared western mail nearly always is. We do not
depend on charset-normalizer: its guesses on the short texts of mail are unreliable and it would
only help the rare undeclared Cyrillic or CJK message. RFC 8621 lets the server use heuristics here.
"""

from __future__ import annotations

import codecs
from contextlib import suppress
from functools import lru_cache

# Labels in use in mail that Python does not know under that name.
_EXTRA_LABELS: dict[str, str] = {
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode-2-0-utf-8": "utf-8",
    "iso-8859-8-i": "iso8859-8",
    "x-mac-roman": "mac-roman",
    "x-gbk": "gb18030",
    "windows-31j": "cp932",
    "x-sjis": "cp932",
    "x-euc-jp": "euc_jp",
    "windows-874": "cp874",
    "cp50220": "iso2022_jp_ext",
    "cp50221": "iso2022_jp_ext",
    "cp50222": "iso2022_jp_ext",
}

# WHATWG Encoding Standard §4.2: decode these codecs as the superset mail actually carries.
_SUPERSETS: dict[str, str] = {
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "iso2022_jp": "iso2022_jp_ext",
}

# Python text codecs that are not character sets.
_NOT_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "charmap"}
)

_UNDECLARED = "ascii"


@lru_cache(maxsize=512)
def codec_for(label: str | None) -> str | None:
    """The Python codec to decode a MIME charset label with; None if the label is unknown.

    An absent or empty label is the MIME default, us-ascii (RFC 2045 §5.2).
    """
    name = (label or "us-ascii").strip().strip('"').split("*", 1)[0].strip().lower()
    name = _EXTRA_LABELS.get(name, name)
    if not name or len(name) > 64:
        return None
    try:
        codec = codecs.lookup(name).name
        _probe(codec)  # LookupError for bytes-to-bytes codecs such as base64 or zlib
    except (LookupError, ValueError):
        return None
    if codec in _NOT_CHARSETS:
        return None
    return _SUPERSETS.get(codec, codec)


def _probe(codec: str) -> None:
    with suppress(UnicodeError):  # a text codec that wants more octets, like UTF-16
        b"a".decode(codec)


def decode(data: bytes, label: str | None) -> tuple[str, bool]:
    """Decode octets declared as charset `label`; returns (text, is_encoding_problem).

    Never raises. The problem flag is set, as bodyValues' isEncodingProblem wants it, when the
    charset is unknown or replacement characters had to be inserted.
    """
    codec = codec_for(label)
    if codec is None:
        return guess(data)[0], True
    if codec == _UNDECLARED:
        return guess(data)
    try:
        return data.decode(codec), False
    except UnicodeError:
        return _replace(data, codec), True


def guess(data: bytes) -> tuple[str, bool]:
    """Decode octets of unknown charset: ASCII, else UTF-8, else Windows-1252 (see module doc)."""
    if data.isascii():
        return data.decode("ascii"), False
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec), False
        except UnicodeError:
            pass
    return data.decode("cp1252", "replace"), True


def _replace(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec, "replace")
    except (UnicodeError, ValueError):
        return data.decode("cp1252", "replace")
