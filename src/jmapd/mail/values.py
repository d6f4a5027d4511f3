"""EmailBodyValue objects (RFC 8621 §4.1.4 bodyValues, §4.2 maxBodyValueBytes)."""

from __future__ import annotations

from typing import Any

from jmapd.mail import charsets, transfer

EmailBodyValue = dict[str, Any]


def body_value(
    octets: bytes, charset: str | None, is_html: bool, max_bytes: int | None, problem: bool
) -> EmailBodyValue:
    """Decode a part's octets (transfer encoding already undone, `problem` if that had trouble),
    CRLF to LF, truncated to `max_bytes` octets of UTF-8 when it is given and not 0."""
    text, charset_problem = charsets.decode(octets, charset)
    text = text.replace("\r\n", "\n")
    truncated = False
    if max_bytes:
        text, truncated = truncate(text, max_bytes, is_html)
    return {
        "value": text,
        "isEncodingProblem": problem or charset_problem,
        "isTruncated": truncated,
    }


def encoded_body_value(
    body: bytes, encoding: str, charset: str | None, is_html: bool, max_bytes: int | None
) -> EmailBodyValue:
    """body_value of a part's octets as they are in the message, with the transfer encoding
    (Content-Transfer-Encoding's value, lowercased) still to undo."""
    octets, problem = transfer.decode(body, encoding)
    return body_value(octets, charset, is_html, max_bytes, problem)


def truncate(text: str, max_bytes: int, is_html: bool) -> tuple[str, bool]:
    """Cut `text` so its UTF-8 takes at most `max_bytes` octets, never mid-character (§4.2 MUST),
    and for HTML not inside a tag (§4.2 SHOULD); returns (text, was truncated)."""
    if len(text) * 4 <= max_bytes:
        return text, False
    octets = text.encode("utf-8")
    if len(octets) <= max_bytes:
        return text, False
    end = max_bytes
    while end > 0 and octets[end] & 0xC0 == 0x80:  # a continuation octet: back up to the start
        end -= 1
    cut = octets[:end].decode("utf-8")
    if is_html and cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    return cut, True
