"""Content-Transfer-Encoding decoding (RFC 2045 §6), tolerant of what real mail gets wrong."""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PADDING = re.compile(rb"=+")
_B64_WELL_FORMED = _B64_ALPHABET + b"= \t\r\n"
_QP_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n|\Z)")
# Blanks to 1, line ends to 2: one search for b"\1\2" finds a blank before a line end (four
# searches for the pairs themselves took 27 us of a 6 KB part, ten times a2b_qp's own).
_BLANK_BEFORE_EOL = bytes.maketrans(b" \t\r\n", b"\1\1\2\2")


def decode(data: bytes, encoding: str) -> tuple[bytes, bool]:
    """Undo a transfer encoding; returns (octets, had_problem). Never raises.

    An unknown encoding leaves the octets as they are (RFC 8621 §4.1.4, blobId) and is reported
    as a problem (§4.2, isEncodingProblem); so is base64 with characters outside its alphabet.
    """
    decoder = _DECODERS.get(encoding)
    if decoder is None:
        return data, True
    return decoder(data)


def _identity(data: bytes) -> tuple[bytes, bool]:
    return data, False


def _base64(data: bytes) -> tuple[bytes, bool]:
    """RFC 2045 §6.8: characters outside the alphabet are ignored; padding may end a chunk early.

    Senders concatenate separately padded chunks and forget padding, so each run between padding
    is decoded on its own; a run with one character too many loses it (flagged as a problem).
    Well-formed base64 (the common case) is decoded in one call.
    """
    if not data.translate(None, _B64_WELL_FORMED):
        body = data.rstrip(b" \t\r\n")
        if b"=" not in body.rstrip(b"="):
            try:
                return binascii.a2b_base64(body), False
            except binascii.Error:
                pass  # the length is off: the careful way below
    compact = data.translate(None, b" \t\r\n")
    junk = compact.translate(None, _B64_ALPHABET + b"=")
    problem = bool(junk)
    if junk:
        compact = compact.translate(None, bytes(set(junk)))
    chunks = []
    for run in _PADDING.split(compact):
        extra = len(run) % 4
        if extra == 1:
            run, problem = run[:-1], True
        elif extra:
            run += b"=" * (4 - extra)
        chunks.append(binascii.a2b_base64(run))
    return b"".join(chunks), problem


def _quoted_printable(data: bytes) -> tuple[bytes, bool]:
    # RFC 2045 §6.7 rule 3: trailing white space on a line was added in transport; drop it
    # (looked for only where there is some: the expression is slow over long text, and
    # encoders write such spaces as =20). Malformed "=" sequences are kept literally, as §6.7
    # note 1 suggests.
    if b"\1\2" in data.translate(_BLANK_BEFORE_EOL) or data.endswith((b" ", b"\t")):
        data = _QP_TRAILING_SPACE.sub(b"", data)
    return binascii.a2b_qp(data), False


_DECODERS: dict[str, Callable[[bytes], tuple[bytes, bool]]] = {
    "": _identity,
    "7bit": _identity,
    "8bit": _identity,
    "binary": _identity,
    "base64": _base64,
    "quoted-printable": _quoted_printable,
}
