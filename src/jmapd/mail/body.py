"""EmailBodyPart objects and the textBody/htmlBody/attachments lists (RFC 8621 §4.1.4)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from jmapd.mail import encoded_words
from jmapd.mail.mime import Part

EmailBodyPart = dict[str, Any]

_SPACE = re.compile(r"\s+")
_CID_URL = re.compile(r"cid:([^\s\"'<>)]+)", re.I)


def body_part(part: Part) -> EmailBodyPart:
    """The EmailBodyPart of `part` and its subParts, blobId left null for the caller to fill.

    A multipart's size is 0: its octets are not kept apart from its children's.
    """
    disposition, disposition_params = part.parsed("Content-Disposition")
    return {
        "partId": part.part_id,
        "blobId": None,
        "size": len(part.content()[0]) if part.sub_parts is None else 0,
        "headers": [dict(h) for h in part.headers],
        "name": _name(part.params, disposition_params),
        "type": part.type,
        "charset": charset(part),
        "disposition": disposition or None,
        "cid": _cid(part.first("Content-ID")),
        "language": _language(part.first("Content-Language")),
        "location": _location(part.first("Content-Location")),
        "subParts": None if part.sub_parts is None else [body_part(p) for p in part.sub_parts],
    }


def charset(part: Part) -> str | None:
    """The charset parameter; else us-ascii for text/* (the MIME default, RFC 2045 §5.2), or
    when there is no Content-Type (unless the implicit type is not text, as in a digest)."""
    declared = part.params.get("charset", "").strip()
    if declared:
        return declared
    return "us-ascii" if part.type.startswith("text/") else None


def _name(type_params: dict[str, str], disposition_params: dict[str, str]) -> str | None:
    # Content-Disposition filename (RFC 2231), else Content-Type name; RFC 2047 words in either
    # are decoded too, as senders use them in both (§4.1.4 "name").
    name = disposition_params.get("filename") or type_params.get("name")
    return encoded_words.decode_lenient(name) if name else None


def _cid(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = _SPACE.sub("", _strip_comments(raw))
    if value.startswith("<"):
        value = value[1:].split(">", 1)[0]
    return value or None


def _language(raw: str | None) -> list[str] | None:
    # RFC 3282: Content-Language is a comma-separated list of language tags.
    if raw is None:
        return None
    tags = [tag for tag in _SPACE.sub("", _strip_comments(raw)).split(",") if tag]
    return tags or None


def _location(raw: str | None) -> str | None:
    # RFC 2557 §4.4.1: a long URI may be folded; the folding white space is not part of it.
    if raw is None:
        return None
    return _SPACE.sub("", raw) or None


def _strip_comments(raw: str) -> str:
    return re.sub(r"\([^()]*\)", " ", raw)


def is_inline_media_type(type: str) -> bool:
    return type.startswith(("image/", "audio/", "video/"))


class BodyLists:
    """textBody, htmlBody and attachments by the algorithm of RFC 8621 §4.1.4, line for line."""

    def __init__(self, root: Part) -> None:
        self.text_body: list[Part] = []
        self.html_body: list[Part] = []
        self.attachments: list[Part] = []
        self._parse([root], "mixed", False, self.html_body, self.text_body)

    def _parse(
        self,
        parts: list[Part],
        multipart_type: str,
        in_alternative: bool,
        html_body: list[Part] | None,
        text_body: list[Part] | None,
    ) -> None:
        text_length = len(text_body) if text_body is not None else -1
        html_length = len(html_body) if html_body is not None else -1
        for i, part in enumerate(parts):
            if part.sub_parts is not None:
                sub_multi_type = part.type.split("/")[1]
                self._parse(
                    part.sub_parts,
                    sub_multi_type,
                    in_alternative or sub_multi_type == "alternative",
                    html_body,
                    text_body,
                )
            elif self._is_inline(part, i, multipart_type):
                if multipart_type == "alternative":
                    # Where the pseudo-code would push onto a list an enclosing alternative
                    # has nulled (a TypeError in JavaScript), the part is left out.
                    if part.type == "text/plain":
                        _push(text_body, part)
                    elif part.type == "text/html":
                        _push(html_body, part)
                    else:
                        self.attachments.append(part)
                    continue
                if in_alternative:
                    if part.type == "text/plain":
                        html_body = None
                    if part.type == "text/html":
                        text_body = None
                if text_body is not None:
                    text_body.append(part)
                if html_body is not None:
                    html_body.append(part)
                if (text_body is None or html_body is None) and is_inline_media_type(part.type):
                    self.attachments.append(part)
            else:
                self.attachments.append(part)
        if multipart_type == "alternative" and text_body is not None and html_body is not None:
            _fill_alternative(text_body, html_body, text_length, html_length)

    def _is_inline(self, part: Part, i: int, multipart_type: str) -> bool:
        # Is this a body part rather than an attachment
        disposition, disposition_params = part.parsed("Content-Disposition")
        name = _name(part.params, disposition_params)
        return (
            disposition != "attachment"
            # Must be one of the allowed body types
            and (part.type in ("text/plain", "text/html") or is_inline_media_type(part.type))
            # If multipart/related, only the first part can be inline
            # If a text part with a filename, and not the first item
            # in the multipart, assume it is an attachment
            and (
                i == 0
                or (multipart_type != "related" and (is_inline_media_type(part.type) or not name))
            )
        )


def _fill_alternative(
    text_body: list[Part], html_body: list[Part], text_length: int, html_length: int
) -> None:
    # Found HTML part only
    if text_length == len(text_body) and html_length != len(html_body):
        text_body.extend(html_body[html_length:])
    # Found plaintext part only
    if html_length == len(html_body) and text_length != len(text_body):
        html_body.extend(text_body[text_length:])


def _push(body: list[Part] | None, part: Part) -> None:
    if body is not None:
        body.append(part)


def has_attachment(lists: BodyLists, html_sources: list[str]) -> bool:
    """Our rule for hasAttachment (RFC 8621 §4.1.4 lets the server decide): true if some part in
    attachments is neither shown as part of the body (also in textBody or htmlBody, like an
    inline image next to the text) nor embedded in an HTML body part by a cid: URL or its
    Content-Location. So a PDF is an attachment even when sent as "inline", and an image
    referenced from the HTML is not, whatever its disposition."""
    cids = {unquote(m).lower() for html in html_sources for m in _CID_URL.findall(html)}
    shown = {id(p) for p in lists.text_body + lists.html_body}
    for part in lists.attachments:
        if id(part) in shown:
            continue
        cid = _cid(part.first("Content-ID"))
        if cid is not None and cid.lower() in cids:
            continue
        location = _location(part.first("Content-Location"))
        if location is not None and any(location in html for html in html_sources):
            continue
        return True
    return False
