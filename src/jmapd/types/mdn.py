"""MDN (RFC 9007): read receipts, sent with MDN/send and read with MDN/parse.

An MDN is no stored type. MDN/send builds an RFC 8098 multipart/report about a received
Email that asks for one (Disposition-Notification-To) and queues it (store/outbox.py) like
an EmailSubmission's message, but with no submission record (submission id "") and from the
null reverse path (RFC 8098 §3); onSuccessUpdateEmail, which must set $mdnsent, then runs
as an implicit Email/set whose response follows (§2.1). MDN/parse reads the
message/disposition-notification part of blobs (§2.2).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from typing import Any

from ..mail.headers import header_value, message_ids_form
from ..protocol.blobs import read_blob
from ..protocol.engine.args import MISSING, ArgSpec, parse_args, request_too_large
from ..protocol.engine.set import one_record
from ..protocol.errors import MethodError, SetError, invalid_arguments, invalid_properties
from ..protocol.registry import REGISTRY, Capability, Context, Response, personal_only
from ..protocol.values import BOOLEAN, ID_KIND, OBJECT, STRING, Kind, ListOf, MapOf, Nullable
from ..store.base import Transaction
from ..store.outbox import queue_message
from .email.store import _key_id
from .identity import allows
from .mailbox import MAIL
from .submission import valid_address

MDN = "urn:ietf:params:jmap:mdn"
# §1.3: an empty object in the session and in the accounts that may send (the user's own)
REGISTRY.capability(Capability(MDN, lambda config: {}, personal_only({})))

DISPOSITION = {
    "actionMode": ("manual-action", "automatic-action"),
    "sendingMode": ("mdn-sent-manually", "mdn-sent-automatically"),
    "type": ("deleted", "dispatched", "displayed", "processed"),
}
# RFC 8098 §3.2: the fields of message/disposition-notification, by MDN property
FIELDS = {"reportingUA": "Reporting-UA", "mdnGateway": "MDN-Gateway",
          "originalRecipient": "Original-Recipient", "finalRecipient": "Final-Recipient",
          "originalMessageId": "Original-Message-ID"}  # fmt: skip
KNOWN_FIELDS = {f.lower() for f in FIELDS.values()} | {"disposition", "error"}
REPORT_TYPES = ("message/disposition-notification", "message/global-disposition-notification")
DISPOSITION_FIELD = re.compile(
    r"\s*([\w-]+)\s*/\s*([\w-]+)\s*;\s*([\w-]+)\s*(?:/\s*(.*?))?\s*", re.ASCII
)
FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")  # RFC 5322 §3.6.8 ftext
DONE = {"displayed": "displayed", "deleted": "deleted", "processed": "processed",
        "dispatched": "sent somewhere else"}  # fmt: skip


class FieldText(Kind):
    """A field value of RFC 8098 §3.2: printable ASCII on one line."""

    name = "a String of printable ASCII characters"

    def check(self, value: Any, resolve: Any = None) -> Any:
        if not isinstance(value, str) or not all(" " <= c <= "~" for c in value):
            raise ValueError(f"must be {self.name}")
        return value


class FieldName(Kind):
    name = "an extension-field name (RFC 8098 §3.3)"

    def check(self, value: Any, resolve: Any = None) -> Any:
        if not isinstance(value, str) or not FIELD_NAME.fullmatch(value):
            raise ValueError(f"must be {self.name}")
        if value.lower() in KNOWN_FIELDS:
            raise ValueError(f"must not be a field RFC 8098 defines ({value})")
        return value


class DispositionKind(Kind):
    name = "a Disposition (actionMode, sendingMode and type, in lowercase)"

    def check(self, value: Any, resolve: Any = None) -> Any:
        if not isinstance(value, dict) or set(value) != set(DISPOSITION):
            raise ValueError(f"must be {self.name}")
        for key, allowed in DISPOSITION.items():
            if value[key] not in allowed:
                raise ValueError(f"{key} must be one of {', '.join(allowed)}")
        return dict(value)


class SubjectKind(Kind):
    name = "a String without line breaks"

    def check(self, value: Any, resolve: Any = None) -> Any:
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"must be {self.name}")
        return value


TEXT = FieldText()
# §2: what a client gives an MDN/send (name → kind, default; MISSING: required)
SETTABLE: ArgSpec = {
    "forEmailId": (ID_KIND, MISSING),
    "subject": (Nullable(SubjectKind()), None),
    "textBody": (Nullable(STRING), None),
    "includeOriginalMessage": (BOOLEAN, False),
    "reportingUA": (Nullable(TEXT), None),
    "disposition": (DispositionKind(), MISSING),
    "finalRecipient": (Nullable(TEXT), None),
    "extensionFields": (Nullable(MapOf(FieldName(), TEXT)), None),
}
SERVER_SET = ("mdnGateway", "originalRecipient", "originalMessageId", "error")
SEND_ARGS: ArgSpec = {
    "accountId": (ID_KIND, MISSING),
    "identityId": (ID_KIND, MISSING),
    "send": (MapOf(STRING, OBJECT), MISSING),
    "onSuccessUpdateEmail": (Nullable(MapOf(STRING, OBJECT)), None),
}
PARSE_ARGS: ArgSpec = {"accountId": (ID_KIND, MISSING), "blobIds": (ListOf(ID_KIND), MISSING)}


# -- MDN/send ----------------------------------------------------------------------------------


@REGISTRY.method("MDN/send", MDN, writes=True)
def mdn_send(ctx: Context, args: dict[str, Any]) -> Response:
    a = parse_args(args, SEND_ARGS, ctx.resolve_creation_id)
    if MAIL not in ctx.using:  # §2.1: for the Identity and the implicit Email/set
        raise MethodError("unknownMethod", f"MDN/send needs {MAIL} in using too")
    request_too_large(len(a["send"]), ctx.config.max_objects_in_set, "MDNs")
    patches = email_patches(a["send"], a["onSuccessUpdateEmail"])
    sent: dict[str, Any] = {}
    not_sent: dict[str, Any] = {}
    emails: dict[str, str] = {}  # creation id → the Email an MDN went out for
    with ctx.write(a["accountId"]) as txn:
        identity = txn.get("Identity", [a["identityId"]]).get(a["identityId"])
        if identity is None:  # §2.1
            raise invalid_arguments(f"no identity {a['identityId']!r}")
        for creation_id, given in a["send"].items():
            try:
                mdn = checked_mdn(ctx, given)
                if mdn["forEmailId"] in emails.values():
                    raise SetError("mdnAlreadySent", "an MDN for this Email is sent already")
                with one_record(txn):
                    sent[creation_id] = send_one(ctx, txn, identity, mdn, set(given))
                emails[creation_id] = mdn["forEmailId"]
            except SetError as e:
                not_sent[creation_id] = e.to_json()
    answer = {"accountId": a["accountId"], "sent": sent or None, "notSent": not_sent or None}
    update = {email_id: patches[cid] for cid, email_id in emails.items()}
    return [("MDN/send", answer), *update_emails(ctx, a["accountId"], update)]


def email_patches(send: dict[str, Any], patches: dict[str, Any] | None) -> dict[str, Any]:
    """§2.1: onSuccessUpdateEmail, keyed by "#" and the creation id of an MDN, must set
    $mdnsent on the Email of each one; the patch for each creation id."""
    out = {}
    for key, patch in (patches or {}).items():
        if not key.startswith("#") or key[1:] not in send:
            raise invalid_arguments(f"onSuccessUpdateEmail: {key!r} is no #creationId in send")
        out[key[1:]] = patch
    missing = [cid for cid in send if not _sets_mdnsent(out.get(cid, {}))]
    if missing:
        raise invalid_arguments("onSuccessUpdateEmail must set keywords/$mdnsent to true for "
                                + ", ".join(missing))  # fmt: skip
    return out


def _sets_mdnsent(patch: dict[str, Any]) -> bool:
    keywords = patch.get("keywords")
    return patch.get("keywords/$mdnsent") is True or (
        isinstance(keywords, dict) and keywords.get("$mdnsent") is True
    )


def checked_mdn(ctx: Context, given: dict[str, Any]) -> dict[str, Any]:
    """The MDN's settable properties with their defaults; invalidProperties naming every
    property that is unknown, server-set or not of its kind."""
    # a server-set property may be given as null, its value before it is sent
    unknown = [k for k in given if k not in SETTABLE and k not in SERVER_SET]
    bad = sorted([*unknown, *(k for k in SERVER_SET if given.get(k) is not None)])
    mdn: dict[str, Any] = {}
    for name, (kind, default) in SETTABLE.items():
        try:
            if name in given:
                mdn[name] = kind.check(given[name], ctx.resolve_creation_id)
            elif default is MISSING:
                bad.append(name)
            else:
                mdn[name] = default
        except ValueError:
            bad.append(name)
    if bad:
        raise invalid_properties(f"invalid properties: {', '.join(bad)}", *bad)
    return mdn


def send_one(ctx: Context, txn: Transaction, identity: dict[str, Any], mdn: dict[str, Any],
             given: set[str]) -> dict[str, Any]:  # fmt: skip
    """Build and queue one MDN; its properties the client did not give (§2.1 sent)."""
    email = txn.get("Email", [mdn["forEmailId"]]).get(mdn["forEmailId"])
    if email is None:
        raise SetError("notFound", f"no Email {mdn['forEmailId']!r}")
    if email["keywords"].get("$mdnsent"):
        raise SetError("mdnAlreadySent", "$mdnsent keyword is already present")
    summary = email["summary"]
    recipients = notification_to(ctx, summary["headers"])
    final = final_recipient(mdn["finalRecipient"], identity["email"], summary["headers"])
    ids = summary["properties"].get("messageId") or []
    original_recipient = header_value(summary["headers"], "Original-Recipient", "Text", False)
    values = {
        **mdn,
        "mdnGateway": None,
        "originalRecipient": _ascii(original_recipient),  # RFC 8098 §3.2.3
        "finalRecipient": final,
        "originalMessageId": _ascii(f"<{ids[0]}>") if ids else None,
        "error": None,
    }
    original_subject = summary["properties"].get("subject") or ""
    if values["subject"] is None:
        values["subject"] = f"Return receipt ({mdn['disposition']['type']}): {original_subject}"
    if values["textBody"] is None:
        values["textBody"] = human_text(values, original_subject)
    original = ctx.blobs.read(email["blobId"]) if mdn["includeOriginalMessage"] else None
    if mdn["includeOriginalMessage"] and original is None:
        raise SetError("notFound", "the Email's message is gone")
    raw = compose(values, identity["name"], final.partition(";")[2].strip(), recipients,
                  original)  # fmt: skip
    if len(raw) > ctx.config.max_message_size:
        raise SetError("tooLarge", "the MDN would be too large to send",
                       maxSize=ctx.config.max_message_size)  # fmt: skip
    enqueue(ctx, txn, raw, recipients)
    return {k: v for k, v in values.items() if k not in given}


def _ascii(value: str | None) -> str | None:
    """A value for a field of RFC 8098 §3.2 (ASCII); None for one that cannot be."""
    return value.strip() if value and value.isascii() and value.isprintable() else None


def notification_to(ctx: Context, headers: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The envelope recipients: the addresses of the one Disposition-Notification-To field
    (RFC 8098 §2.1); notFound without a valid one (RFC 9007 §2.1)."""
    fields = header_value(headers, "Disposition-Notification-To", "Addresses", True)
    addresses = [a["email"] for a in fields[0] or []] if len(fields) == 1 else []
    if not addresses or not all(valid_address(a) for a in addresses):
        raise SetError("notFound", "the Email has no valid Disposition-Notification-To field")
    unique = {a.lower(): a for a in reversed(addresses)}
    if len(unique) > ctx.config.max_recipients:
        raise SetError("tooManyRecipients", "Disposition-Notification-To has too many addresses",
                       maxRecipients=ctx.config.max_recipients)  # fmt: skip
    return [{"email": a, "parameters": None} for a in reversed(unique.values())]


def final_recipient(given: str | None, identity_email: str,
                    headers: list[dict[str, str]]) -> str:  # fmt: skip
    """ "rfc822; address": the client's if the identity allows it (RFC 9007 §5, else
    forbiddenFrom), else the identity's address; for a "*@domain" identity, the first of
    the message's Delivered-To, To and Cc addresses it allows."""
    if given is not None:
        kind, semicolon, address = given.partition(";")
        if not semicolon or kind.strip().lower() != "rfc822" or not valid_address(address.strip()):
            raise invalid_properties('finalRecipient must be "rfc822; address"', "finalRecipient")
        if not allows(identity_email, address.strip()):
            raise SetError("forbiddenFrom", f"this identity may not send as {address.strip()}")
        return f"rfc822; {address.strip()}"
    if not identity_email.startswith("*@"):
        address = identity_email
    else:
        candidates = [a["email"] for name in ("Delivered-To", "To", "Cc")
                      for field in header_value(headers, name, "Addresses", True)
                      for a in field or []]  # fmt: skip
        address = next((a for a in candidates if allows(identity_email, a)), "")
    if not address.isascii() or not valid_address(address):  # RFC 6533 is not supported
        raise invalid_properties("give finalRecipient: the identity names no ASCII address",
                                 "finalRecipient")  # fmt: skip
    return f"rfc822; {address}"


def human_text(values: dict[str, Any], subject: str) -> str:
    """The first part of the report (RFC 8098 §3): what happened, for a person."""
    address = values["finalRecipient"].partition(";")[2].strip()
    kind = values["disposition"]["type"]
    text = f'The message to {address} with the subject "{subject}" has been {DONE[kind]}.'
    if kind == "displayed":
        text += " This is no guarantee that the message has been read or understood."
    return text + "\n"


def compose(values: dict[str, Any], name: str, sender: str, recipients: list[dict[str, Any]],
            original: bytes | None) -> bytes:  # fmt: skip
    """The MDN: multipart/report; report-type=disposition-notification (RFC 8098 §3), from
    the address it is issued for, to the Disposition-Notification-To addresses (§3.1)."""
    report = EmailMessage(policy=policy.SMTP)
    report["From"] = Address(" ".join(name.split()), addr_spec=sender)  # on one line
    report["To"] = ", ".join(r["email"] for r in recipients)
    report["Subject"] = values["subject"]
    report["Date"] = format_datetime(datetime.now(UTC))
    report["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    if values["originalMessageId"]:
        report["References"] = values["originalMessageId"]
    if values["disposition"]["actionMode"] == "automatic-action":
        report["Auto-Submitted"] = "auto-replied"  # RFC 3834 §5
    report.set_content(values["textBody"])
    report.make_mixed()
    report.replace_header("Content-Type", "multipart/report; report-type=disposition-notification")
    fields = EmailMessage(policy=policy.SMTP)
    fields["Content-Type"] = "message/disposition-notification"
    fields.set_payload("".join(policy.SMTP.fold(n, v) for n, v in disposition_fields(values)))
    report.attach(fields)
    if original is not None:  # the third component (RFC 8098 §3; RFC 9007 §2)
        returned = EmailMessage(policy=policy.SMTP)
        returned.set_content(BytesParser(policy=policy.SMTP).parsebytes(original))
        report.attach(returned)
    return report.as_bytes(policy=policy.SMTP)


def disposition_fields(values: dict[str, Any]) -> list[tuple[str, str]]:
    """RFC 8098 §3.2.*, in the order of its grammar."""
    pairs = [(field, values[prop]) for prop, field in FIELDS.items() if values[prop]]
    d = values["disposition"]
    sending = d["sendingMode"].replace("mdn-", "MDN-")  # as RFC 8098 §3.2.6.2 writes it
    pairs.append(("Disposition", f"{d['actionMode']}/{sending}; {d['type']}"))
    pairs += list((values["extensionFields"] or {}).items())
    return pairs


def enqueue(ctx: Context, txn: Transaction, raw: bytes, recipients: list[dict[str, Any]]) -> None:
    """Into the outbound queue with no submission record, from the null reverse path: no
    DSN answers an MDN (RFC 8098 §3)."""
    blob_id = ctx.blobs.put(raw)
    ctx.keep(blob_id, raw)
    queue_message(txn, blob_id, len(raw), "", {"email": "", "parameters": None}, recipients,
                  time.time(), ctx.config.queue_lifetime, bool(ctx.config.smarthost))  # fmt: skip
    queue = ctx.services.get("outbound")
    if queue is not None:
        ctx.after_commit.append(queue.wake)


def update_emails(ctx: Context, account_id: str, update: dict[str, Any]) -> Response:
    """§2.1: the implicit Email/set of onSuccessUpdateEmail, for the MDNs sent."""
    if not update:
        return []
    try:
        answer = ctx.registry.methods["Email/set"].handler(
            ctx, {"accountId": account_id, "update": update}
        )
    except MethodError as e:
        return [("error", e.to_json())]
    return [("Email/set", answer)] if isinstance(answer, dict) else answer


# -- MDN/parse ---------------------------------------------------------------------------------


@REGISTRY.method("MDN/parse", MDN)
def mdn_parse(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    a = parse_args(args, PARSE_ARGS, ctx.resolve_creation_id)
    request_too_large(len(a["blobIds"]), ctx.config.max_objects_in_get, "blobIds")
    parsed: dict[str, Any] = {}
    not_parsable: list[str] = []
    not_found: list[str] = []
    for blob_id in dict.fromkeys(a["blobIds"]):
        with ctx.read(a["accountId"]) as txn:
            raw = read_blob(ctx.blobs, txn, blob_id, ctx.user.account_id)
            mdn = None if raw is None else parse_mdn(raw)
            if mdn is not None:
                mdn["forEmailId"] = email_with_message_id(txn, mdn["originalMessageId"])
        if raw is None:
            not_found.append(blob_id)
        elif mdn is None:
            not_parsable.append(blob_id)
        else:
            parsed[blob_id] = mdn
    return {
        "accountId": a["accountId"],
        "parsed": parsed or None,
        "notParsable": not_parsable or None,
        "notFound": not_found or None,
    }


def parse_mdn(raw: bytes) -> dict[str, Any] | None:
    """An MDN object from a multipart/report holding a disposition notification (RFC 8098
    §3); None if the message is none, or its Disposition field is not one (§3.2.6)."""
    message = message_from_bytes(raw, policy=policy.default)
    parts = list(message.iter_parts()) if message.get_content_type() == "multipart/report" else []
    report = next((p for p in parts if p.get_content_type() in REPORT_TYPES), None)
    fields = _fields(report) if report is not None else None
    disposition = _disposition(fields.get("Disposition", "")) if fields is not None else None
    if fields is None or disposition is None:
        return None
    text = parts[0] if parts[0].get_content_type() == "text/plain" else None
    errors = [str(v).strip() for v in fields.get_all("Error", [])]
    extensions = {k: str(v).strip() for k, v in fields.items() if k.lower() not in KNOWN_FIELDS}
    return {
        "forEmailId": None,
        "subject": str(message["Subject"]) if message["Subject"] is not None else None,
        "textBody": _text(text) if text is not None else None,
        "includeOriginalMessage": len(parts) > 2,
        "disposition": disposition,
        **{prop: _value(fields, field) for prop, field in FIELDS.items()},
        "error": errors or None,
        "extensionFields": extensions or None,
    }


def _fields(part: Message) -> Message | None:
    """The fields of a message/disposition-notification part, which the parser reads as the
    header of a message."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _disposition(value: str) -> dict[str, str] | None:
    """RFC 8098 §3.2.6: "action-mode/sending-mode; type[/modifiers]", in lowercase (RFC 9007
    §2); None if it is not one."""
    match = DISPOSITION_FIELD.fullmatch(str(value))
    if match is None:
        return None
    out = dict(zip(DISPOSITION, (g.lower() for g in match.groups()[:3]), strict=True))
    return out if all(out[k] in allowed for k, allowed in DISPOSITION.items()) else None


def _value(fields: Message, name: str) -> str | None:
    value = fields.get(name)
    return " ".join(str(value).split()) if value is not None else None


def _text(part: MIMEPart) -> str:
    """The human-readable part, with LF line ends and without the line end it closes with."""
    octets = part.get_payload(decode=True)
    charset = part.get_content_charset() or "us-ascii"
    try:
        text = octets.decode(charset, "replace") if isinstance(octets, bytes) else ""
    except LookupError:  # a charset Python does not know
        text = octets.decode("utf-8", "replace") if isinstance(octets, bytes) else ""
    text = text.replace("\r\n", "\n")
    return text[:-1] if text.endswith("\n") else text


def email_with_message_id(txn: Transaction, original: str | None) -> str | None:
    """§2.2 forEmailId: the Email whose Message-ID is the MDN's Original-Message-ID, if
    exactly one has it; found through the thread its threading key names, not by reading
    the account's mail (so one whose subject took it into another thread is not)."""
    ids = message_ids_form(original or "")
    if not ids:
        return None
    key = txn.get("_ThreadKey", [_key_id(ids[0])]).get(_key_id(ids[0]))
    thread = txn.get("Thread", [key["threadId"]]).get(key["threadId"]) if key else None
    emails = txn.get("Email", thread["emailIds"]) if thread else {}
    found = [id for id, e in emails.items()
             if ids[0] in (e["summary"]["properties"].get("messageId") or [])]  # fmt: skip
    return found[0] if len(found) == 1 else None
