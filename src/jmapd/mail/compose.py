"""Build a message (RFC 5322, MIME) from an Email/set create object (RFC 8621 §4.6)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from email import policy as email_policy
from email import quoprimime
from email.headerregistry import (
    Address,
    AddressHeader,
    BaseHeader,
    DateHeader,
    Group,
    UnstructuredHeader,
)
from email.message import EmailMessage, MIMEPart
from typing import Any

from jmapd.mail.headers import form_allowed
from jmapd.mail.parse import CONVENIENCE_PROPERTIES
from jmapd.mail.shape import HEADER_PROPERTY, bad_properties

LoadBlob = Callable[[str], bytes | None]

# SMTP: CRLF line endings, 8bit allowed in bodies. refold_source "none" leaves header values
# given in Raw form exactly as the client wrote them (RFC 8621 §4.1.2.1).
POLICY = email_policy.SMTP.clone(refold_source="none")
MAX_LINE = 998  # RFC 5322 §2.1.1, octets excluding CRLF
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")

# Matched with fullmatch: "$" would let a trailing newline through.
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext
_RAW_VALUE = re.compile(r"(?:[^\r\n\x00]|\r\n[ \t])*")  # only folding line breaks
_CONVENIENCE = {prop: (name, form) for prop, name, form in CONVENIENCE_PROPERTIES}
# EmailBodyPart properties and the header field each one sets.
_PART_FIELDS = {
    "type": "content-type",
    "charset": "content-type",
    "name": "content-type",
    "disposition": "content-disposition",
    "cid": "content-id",
    "language": "content-language",
    "location": "content-location",
}
_MULTIPART_ONLY = ("charset", "name", "cid", "partId", "blobId", "size")


class ComposeError(Exception):
    """An Email/set create object §4.6 rejects: a SetError of type `kind` ("invalidProperties",
    or "blobNotFound" with the missing ids in `not_found`). `properties` are the offending
    properties, as paths below the Email ("bodyStructure/subParts/1/blobId")."""

    def __init__(
        self,
        message: str,
        properties: list[str],
        *,
        kind: str = "invalidProperties",
        not_found: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.properties = properties
        self.kind = kind
        self.not_found = not_found or []


def compose_message(
    email: dict[str, Any], load_blob: LoadBlob, *, now: datetime, hostname: str
) -> bytes:
    """The octets (CRLF line endings) of the message `email` describes, a create object of
    Email/set (§4.6). Blob contents come from `load_blob` (None: no such blob). A Message-ID
    `<random@hostname>` and Date `now` are added when not given. Raises ComposeError."""
    bad = bad_properties(email)
    if bad:
        raise ComposeError(f"wrong type, or a control character, in {', '.join(bad)}", bad)
    _check_body_properties(email)
    msg = EmailMessage(policy=POLICY)
    top_fields = _set_headers(msg, email, "", top_level=True)
    if "message-id" not in top_fields:
        _add(msg, UnstructuredHeader, "Message-ID", f"<{secrets.token_hex(16)}@{hostname}>")
    if "date" not in top_fields:
        _add(msg, DateHeader, "Date", now)
    if "mime-version" not in top_fields:
        msg["MIME-Version"] = "1.0"
    builder = _Builder(email.get("bodyValues") or {}, load_blob)
    if email.get("bodyStructure") is not None:
        structure = email["bodyStructure"]
        clash = sorted(top_fields & _header_fields(structure))
        if clash:
            raise ComposeError(f"{clash[0]} is also set on the Email", ["bodyStructure"])
        builder.fill(msg, structure, "bodyStructure")
    else:
        builder.fill(msg, _structure_from_lists(email), "")
    builder.raise_missing()
    return msg.as_bytes(policy=POLICY)


def _check_body_properties(email: dict[str, Any]) -> None:
    lists = [p for p in ("textBody", "htmlBody", "attachments") if email.get(p) is not None]
    if email.get("bodyStructure") is not None and lists:
        raise ComposeError("bodyStructure excludes textBody, htmlBody, attachments", lists)
    for prop, subtype in (("textBody", "plain"), ("htmlBody", "html")):
        parts = email.get(prop)
        if parts is None:
            continue
        if not isinstance(parts, list) or len(parts) != 1:
            raise ComposeError(f"{prop} must hold exactly one part", [prop])
        if parts[0].get("type", f"text/{subtype}").lower() != f"text/{subtype}":
            raise ComposeError(f"{prop} must be text/{subtype}", [f"{prop}/0/type"])
    for part_id, value in (email.get("bodyValues") or {}).items():
        for flag in ("isTruncated", "isEncodingProblem"):
            if value.get(flag):
                raise ComposeError(f"{flag} must be false", [f"bodyValues/{part_id}/{flag}"])


# --- header fields ---------------------------------------------------------------------------


def _header_properties(obj: dict[str, Any]) -> Iterator[tuple[str, str, str, bool]]:
    """(property, field name, form, all) of each header:* property of an Email or part."""
    for prop in obj:
        if not prop.startswith("header:"):
            continue
        match = HEADER_PROPERTY.fullmatch(prop)
        if match is None or not _FIELD_NAME.fullmatch(match[1]):
            raise ComposeError(f"bad header property {prop}", [prop])
        form = match[2] or "Raw"
        if not form_allowed(match[1], form):
            raise ComposeError(f"{match[1]} may not be given as {form}", [prop])
        yield prop, match[1], form, match[3] is not None


def _header_fields(part: dict[str, Any]) -> set[str]:
    return {name.lower() for _, name, _, _ in _header_properties(part)}


def _set_headers(msg: MIMEPart, obj: dict[str, Any], path: str, top_level: bool) -> set[str]:
    """Add obj's header fields to msg; returns their lowercased names. For a part, the fields
    its own properties (type, cid…) set are taken, and added by the caller."""
    if "headers" in obj:
        raise ComposeError("give header fields as header:* properties", [path + "headers"])
    taken: dict[str, str] = {}
    if not top_level:
        taken = {_PART_FIELDS[p]: p for p in _PART_FIELDS if obj.get(p) is not None}
    props = [(p, *_CONVENIENCE[p], False) for p in _CONVENIENCE if obj.get(p) is not None]
    for prop, name, form, all_ in [*(props if top_level else []), *_header_properties(obj)]:
        key = name.lower()
        if key in taken:  # §4.6: two properties for one header field
            raise ComposeError(f"{name} is given twice", [path + taken[key], path + prop])
        if top_level and key.startswith("content-"):
            raise ComposeError("Content-* fields belong on body parts", [path + prop])
        if not top_level and key in ("content-transfer-encoding", "content-type"):
            raise ComposeError(f"{name} is the server's to write", [path + prop])
        taken[key] = prop
        for value in obj[prop] if all_ and isinstance(obj[prop], list) else [obj[prop]]:
            if value is not None:
                _add_form(msg, name, form, value, path + prop)
    return set(taken)


def _add(msg: MIMEPart, cls: type, name: str, value: object) -> None:
    # The header class is chosen by form, not by field name as the registry would.
    header_type = type("_" + cls.__name__, (cls, BaseHeader), {})
    msg[name] = header_type(name, value)


def _add_form(msg: MIMEPart, name: str, form: str, value: Any, prop: str) -> None:
    try:
        if form == "Raw":
            _add_raw(msg, name, value)
        elif form == "Text":
            _add(msg, UnstructuredHeader, name, _one_line(value))
        elif form in ("Addresses", "GroupedAddresses"):
            _add(msg, AddressHeader, name, _address_list(value, form == "GroupedAddresses"))
        elif form == "Date":
            _add(msg, DateHeader, name, datetime.fromisoformat(value))
        elif form in ("MessageIds", "URLs"):
            items = [_one_line(v).strip("<>") for v in value]
            _add(
                msg,
                UnstructuredHeader,
                name,
                (" " if form == "MessageIds" else ", ").join(f"<{v}>" for v in items),
            )
        else:  # pragma: no cover - FORMS and form_allowed keep this out
            raise KeyError(form)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ComposeError(f"{prop}: {error}", [prop]) from error


def _add_raw(msg: MIMEPart, name: str, value: str) -> None:
    # RFC 8621 §4.1.2.1: the octets after the colon, so a leading SP is the one we write.
    if not _RAW_VALUE.fullmatch(value):
        raise ValueError("line breaks other than folding")
    if any(len(line.encode()) + len(name) + 2 > MAX_LINE for line in value.split("\r\n")):
        raise ValueError("line longer than 998 octets")
    value = value.removeprefix(" ").encode("utf-8").decode("ascii", "surrogateescape")
    msg.set_raw(name, value)


def _one_line(value: str) -> str:
    if not isinstance(value, str) or "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError("must be a string without line breaks")
    return value


def _address(value: dict[str, Any]) -> Address:
    email = _one_line(value.get("email") or "")
    username, at, domain = email.rpartition("@")
    if not at:
        username, domain = email, ""
    return Address(_one_line(value.get("name") or ""), username, domain)


def _address_list(value: list[dict[str, Any]], grouped: bool) -> list[Address | Group]:
    if not grouped:
        return [_address(a) for a in value]
    out: list[Address | Group] = []
    for group in value:
        addresses = [_address(a) for a in group["addresses"]]
        if group.get("name") is None:
            out += addresses
        else:
            out.append(Group(_one_line(group["name"]), addresses))
    return out


# --- body ------------------------------------------------------------------------------------


def _structure_from_lists(email: dict[str, Any]) -> dict[str, Any]:
    """One bodyStructure from textBody, htmlBody and attachments, shaped so that the §4.1.4
    algorithm gives those lists back: text and HTML in multipart/alternative; attachments with
    a cid and no "attachment" disposition next to the HTML in multipart/related (Thunderbird's
    alternative[text, related[html, images]]); the rest in multipart/mixed."""
    text = [dict(p, _path=f"textBody/{i}") for i, p in enumerate(email.get("textBody") or [])]
    html = [dict(p, _path=f"htmlBody/{i}") for i, p in enumerate(email.get("htmlBody") or [])]
    for body, subtype in ((text, "plain"), (html, "html")):
        if body:
            body[0].setdefault("type", f"text/{subtype}")
    inline: list[dict[str, Any]] = []
    attached: list[dict[str, Any]] = []
    for i, given in enumerate(email.get("attachments") or []):
        part = dict(given, _path=f"attachments/{i}")
        is_inline = bool(html and part.get("cid") and part.get("disposition") != "attachment")
        if not any(p.lower().startswith("header:content-disposition") for p in part):
            part.setdefault("disposition", "inline" if is_inline else "attachment")
        (inline if is_inline else attached).append(part)
    if inline:
        html = [_multipart("related", html + inline)]
    main = [_multipart("alternative", text + html)] if text and html else text + html
    if attached:
        return _multipart("mixed", main + attached)
    return main[0] if main else {"type": "text/plain", "_empty": True}


def _multipart(subtype: str, parts: list[Any]) -> dict[str, Any]:
    return {"type": f"multipart/{subtype}", "subParts": parts, "_path": ""}


class _Builder:
    """Fills MIME entities from EmailBodyParts; missing blobs are collected, not raised, so the
    blobNotFound error can list every one (§4.6)."""

    def __init__(self, body_values: dict[str, Any], load_blob: LoadBlob) -> None:
        self.body_values = body_values
        self.load_blob = load_blob
        self.missing: list[tuple[str, str]] = []

    def raise_missing(self) -> None:
        if self.missing:
            ids = list(dict.fromkeys(blob for blob, _ in self.missing))
            paths = [path for _, path in self.missing]
            raise ComposeError("blob not found", paths, kind="blobNotFound", not_found=ids)

    def fill(self, target: MIMEPart, spec: dict[str, Any], path: str) -> None:
        path = spec.get("_path", path)
        prefix = path + "/" if path else ""
        ctype = str(spec.get("type") or "").lower()
        try:
            if ctype.startswith("multipart/") or spec.get("subParts") is not None:
                self._fill_multipart(target, spec, ctype, prefix)
            else:
                self._fill_leaf(target, spec, ctype, prefix)
        except (ValueError, TypeError, AttributeError) as error:
            raise ComposeError(f"{path or 'body'}: {error}", [path or "bodyStructure"]) from error
        _set_headers(target, spec, prefix, top_level=False)

    def _fill_multipart(self, target: MIMEPart, spec: dict[str, Any], ctype: str, pre: str) -> None:
        given = [p for p in _MULTIPART_ONLY if spec.get(p) is not None]
        if given or not ctype.startswith("multipart/") or not spec.get("subParts"):
            bad = [pre + p for p in given] or [pre + "subParts"]
            raise ComposeError("a multipart has subParts and nothing else", bad)
        target["Content-Type"] = ctype
        for i, sub_spec in enumerate(spec["subParts"]):
            sub = MIMEPart(policy=POLICY)
            self.fill(sub, sub_spec, f"{pre}subParts/{i}")
            target.attach(sub)
        _set_part_headers(target, spec)

    def _fill_leaf(self, target: MIMEPart, spec: dict[str, Any], ctype: str, pre: str) -> None:
        part_id, blob_id = spec.get("partId"), spec.get("blobId")
        if spec.get("_empty"):
            _set_text(target, "", "plain")
        elif part_id is not None and blob_id is not None:
            raise ComposeError("partId or blobId, not both", [pre + "partId", pre + "blobId"])
        elif part_id is not None:
            for prop in ("charset", "size"):
                if prop in spec:
                    raise ComposeError(f"no {prop} with a partId", [pre + prop])
            value = self.body_values.get(part_id)
            if not isinstance(value, dict) or not isinstance(value.get("value"), str):
                raise ComposeError(f"no bodyValue for {part_id}", [pre + "partId"])
            maintype, _, subtype = (ctype or "text/plain").partition("/")
            if maintype != "text":
                raise ComposeError("a partId part must be text/*", [pre + "type"])
            _set_text(target, value["value"], subtype)
        elif blob_id is not None:
            data = self.load_blob(blob_id)
            if data is None:
                self.missing.append((blob_id, pre + "blobId"))
                data = b""
            _set_bytes(target, data, ctype or "application/octet-stream", spec.get("charset"))
        else:
            raise ComposeError("a part needs a partId or blobId", [pre + "partId"])
        _set_part_headers(target, spec)


def _set_text(target: MIMEPart, text: str, subtype: str) -> None:
    """The text exactly, line breaks as CRLF: no line break is added at the end (the stdlib's
    set_content adds one, and a draft saved N times would grow N of them)."""
    body = b"\r\n".join(_LINE_BREAK.split(text.encode("utf-8")))
    if any(len(line) > MAX_LINE for line in body.split(b"\r\n")):
        cte = "quoted-printable"
        payload = quoprimime.body_encode(body.decode("latin-1"), 76, eol="\r\n")
    else:
        cte = "7bit" if body.isascii() else "8bit"
        payload = body.decode("ascii", "surrogateescape")
    target["Content-Type"] = f"text/{subtype}"
    target.set_param("charset", "utf-8")
    target["Content-Transfer-Encoding"] = cte
    target.set_payload(payload)


def _set_bytes(target: MIMEPart, data: bytes, ctype: str, charset: str | None) -> None:
    maintype, _, subtype = ctype.partition("/")
    if not subtype:
        raise ValueError(ctype)
    # Byte-exact: 7bit/8bit only when every line break is CRLF and lines fit; else base64.
    lines = data.split(b"\r\n")
    clean = not any(b"\r" in x or b"\n" in x or b"\0" in x or len(x) > MAX_LINE for x in lines)
    cte = "base64"
    if clean and maintype == "text":
        cte = "7bit" if data.isascii() else "8bit"
    elif clean and maintype == "message" and data.isascii():
        cte = "7bit"  # the stdlib generator cannot write an 8bit message/*: base64 then
    target.set_content(data, maintype, subtype, cte=cte)
    if charset and maintype == "text":
        target.set_param("charset", charset)


def _set_part_headers(target: MIMEPart, spec: dict[str, Any]) -> None:
    name, disposition = spec.get("name"), spec.get("disposition")
    if disposition:
        _one_line(disposition)
        del target["Content-Disposition"]
        target["Content-Disposition"] = disposition
        if name:
            target.set_param("filename", name, header="Content-Disposition")
    elif name:
        target.set_param("name", name)
    if spec.get("cid"):
        target["Content-ID"] = f"<{_one_line(spec['cid']).strip('<>')}>"
    if spec.get("language"):
        target["Content-Language"] = ", ".join(_one_line(t) for t in spec["language"])
    if spec.get("location"):
        target["Content-Location"] = _one_line(spec["location"])


__all__ = ["ComposeError", "compose_message"]
