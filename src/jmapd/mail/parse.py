"""Parse a message into the properties of an RFC 8621 Email: a pure function of the octets."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from jmapd.mail import body, summary, values
from jmapd.mail.headers import EmailHeader, header_value
from jmapd.mail.mime import Part, parse_entities
from jmapd.mail.thread_keys import ThreadingKeys, threading_keys

# RFC 8621 §4.1.3 convenience properties: (property, header field, form).
CONVENIENCE_PROPERTIES: tuple[tuple[str, str, str], ...] = (
    ("messageId", "Message-ID", "MessageIds"),
    ("inReplyTo", "In-Reply-To", "MessageIds"),
    ("references", "References", "MessageIds"),
    ("sender", "Sender", "Addresses"),
    ("from", "From", "Addresses"),
    ("to", "To", "Addresses"),
    ("cc", "Cc", "Addresses"),
    ("bcc", "Bcc", "Addresses"),
    ("replyTo", "Reply-To", "Addresses"),
    ("subject", "Subject", "Text"),
    ("sentAt", "Date", "Date"),
)


def parse_message(raw: bytes) -> Message:
    """Parse the octets of a message (RFC 5322, MIME). Never raises: whatever the input (no
    headers, no body, 0 bytes, bare LF, broken boundaries, bad base64, unknown charsets, huge
    fields, NUL octets), the result has best-effort values: a message without headers is all body;
    a multipart whose boundary is missing or never shows holds one header-less text/plain part
    with its text; a part cut off before its closing boundary runs to the end; undecodable octets
    become U+FFFD; unparsable dates and msg-ids are null. Time and memory are O(size)."""
    return Message(raw)


class Message:
    """A parsed message. Methods return fresh JSON-ready values in RFC 8621's shapes; a part's
    blobId is left null for the caller, who owns blob storage."""

    def __init__(self, raw: bytes) -> None:
        self.size = len(raw)
        self._raw = raw
        self._root = parse_entities(raw)
        self._parts = {p.part_id: p for p in self._root.leaves() if p.part_id is not None}

    @property
    def headers(self) -> list[EmailHeader]:
        """§4.1.3 headers: every field in order, name as written, value in Raw form."""
        return [dict(h) for h in self._root.headers]

    def header(self, name: str, form: str = "Raw", all: bool = False) -> Any:
        """§4.1.3 header:{name}:as{form}[:all]; form is one of headers.FORMS ("Raw", "Text",
        "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs"). Whether the form may be
        asked of that field is headers.form_allowed's business, not checked here. KeyError for a
        form name not in that list."""
        return header_value(self._root.headers, name, form, all)

    def properties(self) -> dict[str, Any]:
        """The §4.1.3 convenience properties, messageId to sentAt."""
        return {prop: self.header(name, form) for prop, name, form in CONVENIENCE_PROPERTIES}

    def body_structure(self) -> body.EmailBodyPart:
        """§4.1.4 bodyStructure; message/* parts are leaves."""
        return body.body_part(self._root)

    def text_body(self) -> list[body.EmailBodyPart]:
        return [body.body_part(p) for p in self._lists.text_body]

    def html_body(self) -> list[body.EmailBodyPart]:
        return [body.body_part(p) for p in self._lists.html_body]

    def attachments(self) -> list[body.EmailBodyPart]:
        return [body.body_part(p) for p in self._lists.attachments]

    def has_attachment(self) -> bool:
        """See body.has_attachment for the rule."""
        html = [self._text(p) for p in self._lists.html_body if p.type == "text/html"]
        return body.has_attachment(self._lists, html)

    def preview(self) -> str:
        return summary.preview(self._lists.text_body, self._text)

    def spans(self) -> dict[str, list[int]]:
        """Where each leaf part's body (transfer-encoded) lies in the message, as [offset,
        length]: so a part can be read again from the octets without parsing the message. The
        parser keeps a body's octets as they came, so each is found; one that is not (none
        known) is left out, and its reader parses the message."""
        out: dict[str, list[int]] = {}
        cursor = 0
        for part in self._root.leaves():
            if part.part_id is None:
                continue
            at = self._raw.find(part.body, cursor)
            if at < 0:
                at = self._raw.find(part.body)
            if at >= 0:
                out[part.part_id] = [at, len(part.body)]
                cursor = at + len(part.body)
        return out

    def part_content(self, part_id: str) -> bytes:
        """A leaf part's octets, transfer encoding undone. KeyError for an unknown partId."""
        return self._parts[part_id].content()[0]

    def body_value(self, part_id: str, max_bytes: int | None = None) -> values.EmailBodyValue:
        """§4.1.4 EmailBodyValue of a part; max_bytes None or 0 means no truncation (§4.2).
        KeyError for an unknown partId."""
        part = self._parts[part_id]
        octets, problem = part.content()
        charset = body.charset(part)
        return values.body_value(octets, charset, part.type == "text/html", max_bytes, problem)

    def threading_keys(self) -> ThreadingKeys:
        ids = (self.header(n, "MessageIds") for n in ("Message-ID", "In-Reply-To", "References"))
        return threading_keys(ids, self.header("Subject", "Text"))

    def search_text(self) -> str:
        """Body text for a full-text index: the text/* parts of textBody, htmlBody and the
        attachments, HTML as text."""
        lists = self._lists
        parts = summary.searched_parts(lists.text_body, lists.html_body, lists.attachments)
        return summary.search_text(parts, self._text, lambda part: part.type)

    @cached_property
    def _lists(self) -> body.BodyLists:
        return body.BodyLists(self._root)

    def _text(self, part: Part) -> str:
        return str(self.body_value(part.part_id or "")["value"])
