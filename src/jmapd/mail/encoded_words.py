"""RFC 2047 encoded words, decoded under the placement rules RFC 8621 §4.1.2.2 insists on."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from jmapd.mail import charsets

# RFC 2047 §2; the RFC 2231 §5 "*language" suffix is allowed and ignored. The 75-character limit
# is not enforced: longer words are common in real mail and unambiguous.
_WORD = re.compile(
    r"=\?(?P<charset>[^?\s*]+)(?:\*[^?\s]*)?\?(?P<encoding>[bBqQ])\?(?P<text>[^?\s]+)\?="
)
_WHITESPACE_SPLIT = re.compile(r"([ \t]+)")


@dataclass
class _Encoded:
    charset: str
    octets: list[bytes]


Piece = _Encoded | str


def decode_unstructured(text: str) -> str:
    """Decode the encoded words of unstructured text (RFC 2047 §5(1)): only words standing alone
    between white space count; white space between two encoded words is dropped (§6.2)."""
    if "=?" not in text:
        return text
    return join_pieces(to_piece(chunk) for chunk in _WHITESPACE_SPLIT.split(text) if chunk)


def decode_lenient(text: str) -> str:
    """Decode encoded words anywhere, for parameter values (the de facto Content-Type name and
    filename convention) where RFC 2047 placement rules were never followed."""
    if "=?" not in text:
        return text
    pieces: list[Piece] = []
    end = 0
    for match in _WORD.finditer(text):
        pieces.append(text[end : match.start()])
        pieces.append(to_piece(match[0]))
        end = match.end()
    pieces.append(text[end:])
    return join_pieces(p for p in pieces if p != "")


def to_piece(chunk: str) -> Piece:
    """An encoded word with a known charset becomes _Encoded; anything else stays literal text."""
    match = _WORD.fullmatch(chunk)
    if match is None or charsets.codec_for(match["charset"]) is None:
        return chunk
    encoded = match["text"].encode("ascii", "replace")
    if match["encoding"] in "qQ":
        return _Encoded(match["charset"].lower(), [binascii.a2b_qp(encoded, header=True)])
    try:
        octets = base64.b64decode(encoded + b"=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        return "\ufffd"  # RFC 8621 §4.1.2.2: a failed decoding becomes U+FFFD
    return _Encoded(match["charset"].lower(), [octets])


def join_pieces(pieces: Iterable[Piece]) -> str:
    """Concatenate, dropping white space between encoded words and decoding runs of encoded words
    in one charset together, so a character split across two words survives."""
    out: list[str] = []
    run: _Encoded | None = None
    pending_space = ""
    for piece in pieces:
        if isinstance(piece, str):
            if run is not None and not piece.strip(" \t"):
                pending_space += piece
                continue
            out.append(_decode(run) + pending_space + piece if run else piece)
            run, pending_space = None, ""
        elif run is not None and run.charset == piece.charset:
            run.octets += piece.octets
            pending_space = ""
        else:
            out.append(_decode(run) if run else "")
            run, pending_space = piece, ""
    out.append((_decode(run) + pending_space) if run else pending_space)
    return "".join(out)


def _decode(word: _Encoded) -> str:
    text = charsets.decode(b"".join(word.octets), word.charset)[0]
    # RFC 8621 §4.1.2.2 step 4: NUL and control characters that were encoded are dropped.
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")
