"""Header fields and their parsed forms (RFC 8621 §4.1.2, §4.1.3)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jmapd.mail import addresses, dates, encoded_words
from jmapd.mail.lexer import tokens

EmailHeader = dict[str, str]  # {"name": ..., "value": ...}, the value in Raw form

_ANGLED = re.compile(r"<([^>]*)>?")


def raw_form(source: str) -> str:
    """RFC 8621 §4.1.2.1 Raw form of a value as the email parser holds it (octets as ASCII with
    surrogate escapes): invalid UTF-8 becomes U+FFFD and NUL octets are dropped."""
    if not source.isascii():
        source = source.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return source.replace("\x00", "")


def unfold(value: str) -> str:
    # RFC 5322 §2.2.3. Every line break left inside a parsed field value is a fold.
    return value.replace("\r", "").replace("\n", "")


def text_form(value: str) -> str:
    """§4.1.2.2: unfolded, leading SP removed, RFC 2047 words decoded, NFC."""
    text = encoded_words.decode_unstructured(unfold(value).lstrip(" "))
    return unicodedata.normalize("NFC", text)


def message_ids_form(value: str) -> list[str] | None:
    """§4.1.2.5: the msg-ids without CFWS and angle brackets; words between them are skipped
    (RFC 5322 §4.5.4 obs-in-reply-to / obs-references allow phrases); None if there are none."""
    ids = ["".join(i.split()) for i in _angled(value)]
    return [i for i in ids if i] or None


def urls_form(value: str) -> list[str] | None:
    """§4.1.2.7: the <URL>s of an RFC 2369 field, without brackets, comments or folding white
    space (RFC 2369 §2); None if there are none (e.g. "List-Post: NO")."""
    urls = ["".join(u.split()) for u in _angled(value)]
    return [u for u in urls if u] or None


def _angled(value: str) -> list[str]:
    """The contents of <...> outside comments and quoted strings."""
    if "(" not in value and '"' not in value:
        return _ANGLED.findall(value)  # the common case, without the tokenizer
    return [t.text for t in tokens(value) if t.kind == "angle"]


FORMS: dict[str, Callable[[str], Any]] = {
    "Raw": lambda value: value,
    "Text": text_form,
    "Addresses": addresses.addresses,
    "GroupedAddresses": addresses.grouped_addresses,
    "MessageIds": message_ids_form,
    "Date": dates.parse_date,
    "URLs": urls_form,
}

_ORIGINATOR_FIELDS = ("from", "sender", "reply-to", "to", "cc", "bcc")
_ADDRESS_FIELDS = (*_ORIGINATOR_FIELDS, *("resent-" + n for n in _ORIGINATOR_FIELDS))
_LIST_FIELDS = ("list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner")
# §4.1.2.*: which forms a field defined in RFC 5322 or RFC 2369 may be fetched in.
_DEFINED_FIELD_FORMS: dict[str, frozenset[str]] = {
    **{n: frozenset({"Raw", "Text"}) for n in ("subject", "comments", "keywords")},
    **{n: frozenset({"Raw", "Addresses", "GroupedAddresses"}) for n in _ADDRESS_FIELDS},
    **{
        n: frozenset({"Raw", "MessageIds"})
        for n in ("message-id", "in-reply-to", "references", "resent-message-id")
    },
    **{n: frozenset({"Raw", "Date"}) for n in ("date", "resent-date")},
    **{n: frozenset({"Raw", "URLs"}) for n in (*_LIST_FIELDS, "list-archive")},
    **{n: frozenset({"Raw"}) for n in ("return-path", "received")},
}


def form_allowed(name: str, form: str) -> bool:
    """Whether header:{name}:as{form} may be fetched (§4.1.2; else invalidArguments, §4.2).
    Fields not defined in RFC 5322 or RFC 2369 (List-Id among them) allow every form."""
    allowed = _DEFINED_FIELD_FORMS.get(name.lower())
    return form in FORMS and (allowed is None or form in allowed)


def header_value(headers: Sequence[Mapping[str, str]], name: str, form: str, all: bool) -> Any:
    """§4.1.3 header:{name}[:as{form}][:all] over a list of EmailHeader: the last instance, or
    every instance in order with `all`; None (or []) when the field is absent.

    Raises KeyError for a form name that is not one of FORMS.
    """
    parse = FORMS[form]
    key = name.lower()
    values = [h["value"] for h in headers if h["name"].lower() == key]
    if all:
        return [parse(v) for v in values]
    return parse(values[-1]) if values else None


_FIELD_START = re.compile(rb"(?m)^(?=[^ \t\r\n])")


def without_fields(raw: bytes, names: set[str]) -> bytes:
    """The message with the header fields of these (lowercase) names taken out of its header
    section, each with its folded lines; everything else byte for byte (RFC 8621 §7.5: Bcc
    is not sent)."""
    # the header section ends with the line that ends before the empty line
    end = min((i + len(sep) // 2 for sep in (b"\r\n\r\n", b"\n\n") if (i := raw.find(sep)) >= 0),
              default=len(raw))  # fmt: skip
    header, body = raw[:end], raw[end:]
    fields = [f for f in _FIELD_START.split(header) if f]
    kept = [f for f in fields if f.split(b":", 1)[0].strip().lower().decode("latin-1") not in names]
    return b"".join(kept) + body
