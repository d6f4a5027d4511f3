"""The MIME entity tree of a message (RFC 2045, RFC 2046), from the stdlib `email` parser.

The stdlib feed parser splits headers, bodies and multipart boundaries and copes with broken
boundaries, bare LF and missing blank lines. Two adjustments make it fit RFC 8621:
- a policy that keeps each header value exactly as it was (compat32 strips the leading space),
  since the Raw form (§4.1.2.1) starts right after the colon;
- an entity class that reads Content-Type our way (first instance, RFC 2231 parameters) and
  hides message/* types from the parser, so an attached message stays one opaque leaf with its
  octets intact (bodyStructure does not recurse into it, §4.1.4). Multiparts nested deeper than
  MAX_DEPTH are kept opaque the same way, which bounds the parser's recursion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from itertools import count
from typing import TYPE_CHECKING

from jmapd.mail import params, transfer
from jmapd.mail.headers import EmailHeader, raw_form

MAX_DEPTH = 40
# A message with more boundary-like lines than this is not split into parts: its body is one
# part. Splitting 30,000 parts took seconds of CPU and an 8 MB summary for a 1 MB message; real
# mail has a few dozen parts.
MAX_PART_LINES = 5000
_OPAQUE = "application/octet-stream"

if TYPE_CHECKING:
    _Base = Message[str, str]
else:
    _Base = Message


class _RawPolicy(Compat32):
    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = sourcelines[0].split(":", 1)
        value = (value + "".join(sourcelines[1:])).removesuffix("\n").removesuffix("\r")
        return name, value


class _Entity(_Base):
    depth = 0
    _content_type: tuple[int, tuple[str, dict[str, str]] | None] | None = None

    def attach(self, payload: _Base | str) -> None:
        if isinstance(payload, _Entity):
            payload.depth = self.depth + 1
        super().attach(payload)

    def raw_payload(self) -> object:
        # get_payload() would decode 8-bit octets with the charset; we want them as they came.
        return self._payload  # type: ignore[attr-defined]

    def content_type(self) -> tuple[str, dict[str, str]] | None:
        """The first Content-Type, parsed. Cached while the number of fields stays the same:
        the parser asks again of a parent for each child, and fields are all set by then."""
        if self._content_type is None or self._content_type[0] != len(self):
            raw = next((v for k, v in self.raw_items() if k.lower() == "content-type"), None)
            parsed = params.parse_value(raw_form(raw)) if raw is not None else None
            self._content_type = (len(self), parsed)
        return self._content_type[1]

    def media_type(self) -> str:
        """RFC 2045 §5.2: the type, lowercased; the default when absent or invalid."""
        parsed = self.content_type()
        if parsed is None:
            return self.get_default_type()
        value = parsed[0]
        if value.count("/") != 1 or value.startswith("/") or value.endswith("/"):
            return "text/plain"
        return value

    def get_content_type(self) -> str:
        value = self.media_type()
        if value.startswith("message/"):
            return _OPAQUE
        if value.startswith("multipart/") and self.depth >= MAX_DEPTH:
            return _OPAQUE
        return value

    def get_boundary(self, failobj: str | None = None) -> str | None:  # type: ignore[override]
        boundary = (self.content_type() or ("", {}))[1].get("boundary")
        return boundary.rstrip() if boundary else failobj


class _Unsplit(_Entity):
    depth = MAX_DEPTH  # every multipart is opaque to the parser


_PARSER = BytesParser(_class=_Entity, policy=_RawPolicy())
_UNSPLIT_PARSER = BytesParser(_class=_Unsplit, policy=_RawPolicy())


@dataclass(eq=False)
class Part:
    """One MIME entity. Leaves keep their transfer-encoded body; multiparts their children."""

    headers: list[EmailHeader]
    type: str
    params: dict[str, str]
    body: bytes = b""
    sub_parts: list[Part] | None = None
    part_id: str | None = None
    _decoded: tuple[bytes, bool] | None = field(default=None, repr=False)
    _parsed: dict[str, tuple[str | None, dict[str, str]]] = field(default_factory=dict, repr=False)

    def first(self, name: str) -> str | None:
        """The Raw value of the first instance of a field (MIME fields occur once)."""
        key = name.lower()
        return next((h["value"] for h in self.headers if h["name"].lower() == key), None)

    def parsed(self, name: str) -> tuple[str | None, dict[str, str]]:
        """The first instance of a structured MIME field as (value, parameters)."""
        if name not in self._parsed:
            raw = self.first(name)
            self._parsed[name] = params.parse_value(raw) if raw is not None else (None, {})
        return self._parsed[name]

    def content(self) -> tuple[bytes, bool]:
        """The body with its Content-Transfer-Encoding undone, and whether that had problems."""
        if self._decoded is None:
            encoding = self.parsed("Content-Transfer-Encoding")[0] or ""
            self._decoded = transfer.decode(self.body, encoding)
        return self._decoded

    def leaves(self) -> list[Part]:
        if self.sub_parts is None:
            return [self]
        return [leaf for part in self.sub_parts for leaf in part.leaves()]


def parse_entities(raw: bytes) -> Part:
    """The entity tree, leaf partIds numbered "1", "2", ... in depth-first order. Never raises.
    Time and memory are O(size): a message with more than MAX_PART_LINES boundary-like lines
    is one part."""
    many = raw.count(b"\n--") > MAX_PART_LINES
    entity = (_UNSPLIT_PARSER if many else _PARSER).parsebytes(raw)
    assert isinstance(entity, _Entity)
    return _part(entity, count(1))


def _part(entity: _Entity, ids: count[int]) -> Part:
    headers = [{"name": name, "value": raw_form(value)} for name, value in entity.raw_items()]
    media_type = entity.media_type()
    type_params = (entity.content_type() or ("", {}))[1]
    payload = entity.raw_payload()
    if not media_type.startswith("multipart/"):
        return Part(headers, media_type, type_params, _octets(payload), part_id=str(next(ids)))
    if isinstance(payload, list):
        children = [_part(child, ids) for child in payload if isinstance(child, _Entity)]
    else:
        # No boundary, none found, or nested too deep: keep the text as one plain part.
        children = [Part([], "text/plain", {}, _octets(payload), part_id=str(next(ids)))]
    return Part(headers, media_type, type_params, sub_parts=children)


def _octets(payload: object) -> bytes:
    if not isinstance(payload, str):
        return b""
    return payload.encode("ascii", "surrogateescape")
