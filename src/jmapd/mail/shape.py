"""The shape of an Email/set create object (RFC 8621 §4.1, §4.6), checked before anything is
composed: every value of the wrong JSON type, and every header value or address with a control
character (which would fold into a header line of its own: a forged From, a Bcc, another
body), is found, and all of them are named together."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

# C0 controls but TAB, DEL, C1 controls, and the Unicode line and paragraph separators: what
# str.splitlines() breaks at, and no header field body may hold (RFC 5322 §2.2).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # Raw keeps its folding CRLFs
HEADER_PROPERTY = re.compile(r"header:([^:]+)(?::as([A-Za-z]+))?(:all)?")

Check = Callable[[Any], bool]


def clean(value: Any) -> bool:
    return isinstance(value, str) and not _CONTROL.search(value)


def _nullable(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and all(check(v) for v in value)


def email_address(value: Any) -> bool:
    """An EmailAddress object (§4.1.2.3): a clean String email and a String or null name."""
    return (
        isinstance(value, dict)
        and _nullable(clean)(value.get("name"))
        and clean(value.get("email"))
    )


def _group(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _nullable(clean)(value.get("name"))
        and _list_of(email_address)(value.get("addresses"))
    )


FORM_CHECKS: dict[str, Check] = {
    "Raw": lambda v: isinstance(v, str) and not _RAW_CONTROL.search(v),
    "Text": clean,
    "Addresses": _list_of(email_address),
    "GroupedAddresses": _list_of(_group),
    "MessageIds": _nullable(_list_of(clean)),
    "Date": _nullable(clean),
    "URLs": _nullable(_list_of(clean)),
}
# RFC 8621 §4.1.3 convenience properties and their forms.
CONVENIENCE_FORMS = {
    "messageId": "MessageIds", "inReplyTo": "MessageIds", "references": "MessageIds",
    "sender": "Addresses", "from": "Addresses", "to": "Addresses", "cc": "Addresses",
    "bcc": "Addresses", "replyTo": "Addresses", "subject": "Text", "sentAt": "Date",
}  # fmt: skip
_UNSIGNED = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
PART_CHECKS: dict[str, Check] = {
    "partId": _nullable(clean),
    "blobId": _nullable(clean),
    "size": _UNSIGNED,
    "name": _nullable(clean),
    "type": _nullable(clean),
    "charset": _nullable(clean),
    "disposition": _nullable(clean),
    "cid": _nullable(clean),
    "language": _nullable(_list_of(clean)),
    "location": _nullable(clean),
}


def _header_property(prop: str, value: Any) -> bool:
    match = HEADER_PROPERTY.fullmatch(prop)
    if match is None:
        return False
    check = FORM_CHECKS.get(match[2] or "Raw")
    if check is None:
        return False
    if match[3]:
        return value is None or _list_of(check)(value)
    return value is None or check(value)


def _part(part: Any, path: str) -> Iterator[str]:
    if not isinstance(part, dict):
        yield path
        return
    for prop, value in part.items():
        if prop in PART_CHECKS:
            if not PART_CHECKS[prop](value):
                yield f"{path}/{prop}"
        elif prop == "subParts":
            yield from _parts(value, f"{path}/subParts")
        elif prop.startswith("header:") and not _header_property(prop, value):
            yield f"{path}/{prop}"


def _parts(value: Any, path: str) -> Iterator[str]:
    if value is None:
        return
    if not isinstance(value, list):
        yield path
        return
    for i, part in enumerate(value):
        yield from _part(part, f"{path}/{i}")


def _body_values(value: Any) -> Iterator[str]:
    if value is None:
        return
    if not isinstance(value, dict):
        yield "bodyValues"
        return
    for part_id, body in value.items():
        path = f"bodyValues/{part_id}"
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            yield path
            continue
        for flag in ("isEncodingProblem", "isTruncated"):
            if not isinstance(body.get(flag, False), bool):
                yield f"{path}/{flag}"


def bad_properties(email: dict[str, Any]) -> list[str]:
    """The paths of every value in an Email create object that has the wrong shape (empty
    when all is well); what the values mean is checked when the message is composed."""
    bad: list[str] = []
    for prop, value in email.items():
        if prop in CONVENIENCE_FORMS:
            if value is not None and not FORM_CHECKS[CONVENIENCE_FORMS[prop]](value):
                bad.append(prop)
        elif prop.startswith("header:"):
            if not _header_property(prop, value):
                bad.append(prop)
        elif prop == "bodyStructure":
            bad += [] if value is None else _part(value, prop)
        elif prop in ("textBody", "htmlBody", "attachments"):
            bad += _parts(value, prop)
        elif prop == "bodyValues":
            bad += _body_values(value)
    return bad
