"""An Email's properties as Email/get and Email/parse show them (RFC 8621 §4.1, §4.2): the
requested properties and bodyProperties, header:{name}:as{form}[:all] fields, bodyValues."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ...mail import form_allowed
from ...mail.headers import FORMS, header_value
from ...protocol.errors import invalid_arguments
from ...protocol.values import BOOLEAN, STRING, UNSIGNED_INT, ListOf, Nullable

METADATA = ("id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt")
CONVENIENCE = (
    "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo",
    "subject", "sentAt",
)  # fmt: skip
BODY = (
    "headers", "bodyStructure", "bodyValues", "textBody", "htmlBody", "attachments",
    "hasAttachment", "preview",
)  # fmt: skip
GET_DEFAULT = (
    *METADATA, *CONVENIENCE, "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody",
    "attachments",
)  # fmt: skip
PARSE_DEFAULT = (*CONVENIENCE, "hasAttachment", "preview", "bodyValues", "textBody",
                 "htmlBody", "attachments")  # fmt: skip
BODY_PART = (
    "partId", "blobId", "size", "headers", "name", "type", "charset", "disposition", "cid",
    "language", "location", "subParts",
)  # fmt: skip
BODY_DEFAULT = (
    "partId", "blobId", "size", "name", "type", "charset", "disposition", "cid", "language",
    "location",
)  # fmt: skip

# The arguments Email/get and Email/parse share (§4.2, §4.9).
BODY_ARGS = {
    "bodyProperties": (Nullable(ListOf(STRING)), None),
    "fetchTextBodyValues": (BOOLEAN, False),
    "fetchHTMLBodyValues": (BOOLEAN, False),
    "fetchAllBodyValues": (BOOLEAN, False),
    "maxBodyValueBytes": (UNSIGNED_INT, 0),
}


class ParsedMessage(Protocol):
    """What the view reads of a message: a parsed one (mail.Message) or a stored summary."""

    @property
    def headers(self) -> list[dict[str, str]]: ...
    def properties(self) -> dict[str, Any]: ...
    def body_structure(self) -> dict[str, Any]: ...
    def text_body(self) -> list[dict[str, Any]]: ...
    def html_body(self) -> list[dict[str, Any]]: ...
    def attachments(self) -> list[dict[str, Any]]: ...
    def has_attachment(self) -> bool: ...
    def preview(self) -> str: ...
    def body_value(self, part_id: str, max_bytes: int | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HeaderProperty:
    """header:{name}[:as{form}][:all] (§4.1.3)."""

    name: str
    form: str
    all: bool

    @staticmethod
    def parse(prop: str) -> HeaderProperty | None:
        if not prop.startswith("header:"):
            return None
        name, *rest = prop[len("header:") :].split(":")
        every = bool(rest) and rest[-1] == "all"
        if every:
            rest = rest[:-1]
        form = rest[0][2:] if len(rest) == 1 and rest[0].startswith("as") else "Raw"
        if not name or len(rest) > 1 or (rest and form == "Raw" and rest[0] != "asRaw"):
            raise invalid_arguments(f"{prop!r} is not header:{{name}}[:as{{form}}][:all]")
        if form not in FORMS or not form_allowed(name, form):
            raise invalid_arguments(f"{prop!r}: header {name} cannot be fetched as {form}")
        return HeaderProperty(name, form, every)

    def value(self, headers: list[dict[str, str]]) -> Any:
        return header_value(headers, self.name, self.form, self.all)


def checked(props: list[str] | None, default: tuple[str, ...], known: tuple[str, ...]) -> list[str]:
    """The requested properties (or the default), each known or a valid header property."""
    chosen = list(default if props is None else dict.fromkeys(props))
    for prop in chosen:
        if prop not in known and HeaderProperty.parse(prop) is None:
            raise invalid_arguments(f"unknown property {prop!r}")
    return chosen


@dataclass
class View:
    """What the caller asked to see of each Email."""

    properties: list[str]
    body_properties: list[str]
    fetch_text: bool
    fetch_html: bool
    fetch_all: bool
    max_bytes: int

    @staticmethod
    def from_args(args: dict[str, Any], default: tuple[str, ...]) -> View:
        return View(
            checked(args.get("properties"), default, (*METADATA, *CONVENIENCE, *BODY)),
            checked(args["bodyProperties"], BODY_DEFAULT, BODY_PART),
            args["fetchTextBodyValues"],
            args["fetchHTMLBodyValues"],
            args["fetchAllBodyValues"],
            args["maxBodyValueBytes"],
        )

    def email(
        self, message: ParsedMessage, metadata: dict[str, Any], part_blob: Callable[[str], str]
    ) -> dict[str, Any]:
        """The Email: metadata as given, the rest from the parsed message."""
        sources: dict[str, Callable[[], Any]] = {
            "headers": lambda: message.headers,
            "bodyStructure": lambda: self.part(message.body_structure(), part_blob),
            "textBody": lambda: [self.part(p, part_blob) for p in message.text_body()],
            "htmlBody": lambda: [self.part(p, part_blob) for p in message.html_body()],
            "attachments": lambda: [self.part(p, part_blob) for p in message.attachments()],
            "hasAttachment": message.has_attachment,
            "preview": message.preview,
            "bodyValues": lambda: self.body_values(message),
        }
        convenience = message.properties()
        out: dict[str, Any] = {}
        for prop in self.properties:
            if prop in metadata:
                out[prop] = metadata[prop]
            elif prop in convenience:
                out[prop] = convenience[prop]
            elif prop in sources:
                out[prop] = sources[prop]()
            else:
                header = HeaderProperty.parse(prop)
                assert header is not None
                out[prop] = header.value(message.headers)
        return out

    def part(self, part: dict[str, Any], part_blob: Callable[[str], str]) -> dict[str, Any]:
        """A body part with the bodyProperties asked for; a multipart always with its
        subParts, asked for or not (without them, every multipart message would look like
        one empty part to a client that takes the default bodyProperties)."""
        properties = self.body_properties
        if part["subParts"] is not None and "subParts" not in properties:
            properties = [*properties, "subParts"]
        out: dict[str, Any] = {}
        for prop in properties:
            if prop == "blobId":
                out[prop] = part_blob(part["partId"]) if part["partId"] is not None else None
            elif prop == "subParts":
                subparts = part["subParts"]
                out[prop] = (
                    None if subparts is None else [self.part(p, part_blob) for p in subparts]
                )
            elif prop in part:
                out[prop] = part[prop]
            else:
                header = HeaderProperty.parse(prop)
                assert header is not None
                out[prop] = header.value(part["headers"])
        return out

    def body_values(self, message: ParsedMessage) -> dict[str, Any]:
        """§4.2: the text/* parts the fetch arguments select, truncated to maxBodyValueBytes."""
        chosen: list[dict[str, Any]] = []
        if self.fetch_text:
            chosen += message.text_body()
        if self.fetch_html:
            chosen += message.html_body()
        if self.fetch_all:
            chosen += _leaves(message.body_structure())
        limit = self.max_bytes or None
        return {
            p["partId"]: message.body_value(p["partId"], limit)
            for p in chosen
            if p["partId"] is not None and p["type"].startswith("text/")
        }


def _leaves(part: dict[str, Any]) -> list[dict[str, Any]]:
    if part["subParts"] is None:
        return [part]
    return [leaf for sub in part["subParts"] for leaf in _leaves(sub)]
