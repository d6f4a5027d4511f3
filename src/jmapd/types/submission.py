"""EmailSubmission (RFC 8621 §7): sending an Email through the outbound queue.

A create checks the message and the envelope (every SetError of §7.5), strips Bcc from the
bytes to be sent and queues them (store/outbox.py) in the same transaction: the submission
exists exactly when its message is queued. The queue (smtp/outbound.py) sends it after
`send_delay` or at the FUTURERELEASE time, and writes each recipient's deliveryStatus back.
Until it is handed over, the client may cancel it (undoStatus canceled); after that, it
cannot (cannotUnsend). Destroying a submission leaves its deliveries alone (§7).

onSuccessUpdateEmail and onSuccessDestroyEmail run as one implicit Email/set after the set,
whose response follows (§7.5).
"""

from __future__ import annotations

import time
from typing import Any

from ..mail import parse_message
from ..mail.headers import without_fields
from ..protocol.engine import DataType, Filter, Hooks, Property, register_type
from ..protocol.errors import MethodError, SetError, invalid_properties
from ..protocol.registry import Context, Response
from ..protocol.values import (
    ID_KIND,
    OBJECT,
    STRING,
    UTC_DATE_KIND,
    Kind,
    ListOf,
    MapOf,
    Nullable,
    Resolver,
    utc_date,
    utc_seconds,
)
from ..store.base import Transaction
from ..store.outbox import queue_message
from .identity import MAX_DELAYED_SEND, SUBMISSION, allows

UNDO_STATUSES = ("pending", "final", "canceled")
MAX_ADDRESS = 320  # octets of a Mailbox in a Reverse- or Forward-path (RFC 5321 §4.5.3.1)
QUEUED = {"smtpReply": "250 2.0.0 Queued", "delivered": "queued", "displayed": "unknown"}


def valid_address(email: Any) -> bool:
    """A Mailbox of RFC 5321 §4.1.2, as far as a sender can tell: local@domain, printable,
    no spaces or angle brackets."""
    if not isinstance(email, str) or len(email.encode()) > MAX_ADDRESS:
        return False
    local, at, domain = email.rpartition("@")
    return bool(at and local and "." in domain.strip(".") and not domain.startswith(".")
                and all(c.isprintable() and c not in ' <>()[]\\,;:"' for c in domain)
                and all(c.isprintable() and c not in " <>" for c in local))  # fmt: skip


class AddressKind(Kind):
    name = 'an Address ({"email": String, "parameters": Object|null})'

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if not isinstance(value, dict) or not isinstance(value.get("email"), str):
            raise ValueError(f"must be {self.name}")
        parameters = value.get("parameters")
        if set(value) - {"email", "parameters"} or not (
            parameters is None
            or (isinstance(parameters, dict)
                and all(v is None or isinstance(v, str) for v in parameters.values()))
        ):  # fmt: skip
            raise ValueError(f"must be {self.name}")
        return {"email": value["email"], "parameters": parameters}


class EnvelopeKind(Kind):
    name = "an Envelope ({mailFrom: Address, rcptTo: Address[]})"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if not isinstance(value, dict) or set(value) != {"mailFrom", "rcptTo"}:
            raise ValueError(f"must be {self.name}")
        return {"mailFrom": AddressKind().check(value["mailFrom"]),
                "rcptTo": ListOf(AddressKind()).check(value["rcptTo"])}  # fmt: skip


class UndoStatus(Kind):
    name = "one of pending, final, canceled"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if value not in UNDO_STATUSES:
            raise ValueError(f"must be {self.name}")
        return value


def release_time(mail_from: dict[str, Any], now: float) -> float | None:
    """When FUTURERELEASE (RFC 4865) asks the message to be released: HOLDFOR seconds or
    HOLDUNTIL a date; None when neither is given. ValueError for a bad or too far one."""
    parameters = {k.upper(): v for k, v in (mail_from["parameters"] or {}).items()}
    if "HOLDFOR" in parameters and "HOLDUNTIL" in parameters:
        raise ValueError("HOLDFOR and HOLDUNTIL exclude each other")
    if "HOLDFOR" in parameters:
        value = parameters["HOLDFOR"] or ""
        if not value.isdigit() or int(value) > MAX_DELAYED_SEND:
            raise ValueError(f"HOLDFOR must be 0 to {MAX_DELAYED_SEND} seconds")
        return now + int(value)
    if "HOLDUNTIL" in parameters:
        try:
            when = utc_seconds(str(parameters["HOLDUNTIL"]).replace("+00:00", "Z"))
        except ValueError:
            raise ValueError("HOLDUNTIL must be a UTC date-time") from None
        if when > now + MAX_DELAYED_SEND:
            raise ValueError(f"HOLDUNTIL is more than {MAX_DELAYED_SEND} seconds away")
        return max(when, now)
    return None


def derived_envelope(message: Any, identity_email: str) -> dict[str, Any]:
    """§7: mailFrom from the last Sender (else From) field, the identity's address when that
    one is not the identity's; rcptTo the deduplicated To, Cc and Bcc."""
    for name in ("Sender", "From"):
        fields = [f for f in message.header(name, "Addresses", all=True) if f]
        if fields:
            if len(fields) > 1 or len(fields[-1]) > 1:
                raise SetError("invalidEmail", f"more than one {name} address",
                               properties=[name.lower()])  # fmt: skip
            mail_from = fields[-1][0]["email"]
            break
    else:
        mail_from = identity_email
    if not allows(identity_email, mail_from):
        mail_from = identity_email
    seen: dict[str, dict[str, Any]] = {}
    for name in ("To", "Cc", "Bcc"):
        for field in message.header(name, "Addresses", all=True):
            for address in field or []:
                seen.setdefault(address["email"].lower(), {"email": address["email"],
                                                           "parameters": None})  # fmt: skip
    return {"mailFrom": {"email": mail_from, "parameters": None}, "rcptTo": list(seen.values())}


def check_envelope(ctx: Context, envelope: dict[str, Any], identity_email: str) -> None:
    """The §7.5 SetErrors an envelope can earn."""
    mail_from = envelope["mailFrom"]
    if not mail_from["email"] or not allows(identity_email, mail_from["email"]):
        raise SetError("forbiddenMailFrom",
                       f"this identity may not send as {mail_from['email']!r}")  # fmt: skip
    unknown = {k.upper() for k in (mail_from["parameters"] or {})} - {"HOLDFOR", "HOLDUNTIL"}
    for rcpt in envelope["rcptTo"]:
        unknown |= {k.upper() for k in (rcpt["parameters"] or {})}
    if unknown:
        raise invalid_properties(f"envelope has parameters the server does not support: "
                                 f"{', '.join(sorted(unknown))}", "envelope")  # fmt: skip
    recipients = envelope["rcptTo"]
    if not recipients:
        raise SetError("noRecipients", "the envelope has no recipients")
    if len(recipients) > ctx.config.max_recipients:
        raise SetError("tooManyRecipients", "the envelope has too many recipients",
                       maxRecipients=ctx.config.max_recipients)  # fmt: skip
    invalid = [r["email"] for r in recipients if not valid_address(r["email"])]
    if invalid:
        raise SetError("invalidRecipients", "some recipients are not addresses",
                       invalidRecipients=invalid)  # fmt: skip


class SubmissionHooks(Hooks):
    def create(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        if record["undoStatus"] != "pending":
            raise invalid_properties("undoStatus must be pending when it is made", "undoStatus")
        identity = txn.get("Identity", [record["identityId"]]).get(record["identityId"])
        email = txn.get("Email", [record["emailId"]]).get(record["emailId"])
        missing = [n for n, r in (("identityId", identity), ("emailId", email)) if r is None]
        if identity is None or email is None:
            raise invalid_properties(f"{' and '.join(missing)} not found", *missing)
        raw = ctx.blobs.read(email["blobId"])
        if raw is None:
            raise SetError("invalidEmail", "the message's content is gone", properties=["blobId"])
        if len(raw) > ctx.config.max_message_size:
            raise SetError("tooLarge", "the message is too large to send",
                           maxSize=ctx.config.max_message_size)  # fmt: skip
        message = parse_message(raw)
        senders = [a["email"] for f in message.header("From", "Addresses", all=True)
                   for a in f or []]  # fmt: skip
        if not senders:
            raise SetError("invalidEmail", "the message has no From address", properties=["from"])
        if not all(allows(identity["email"], s) for s in senders):
            raise SetError("forbiddenFrom", f"this identity may not send as {', '.join(senders)}")
        envelope = record["envelope"] or derived_envelope(message, identity["email"])
        check_envelope(ctx, envelope, identity["email"])
        now = time.time()
        try:
            held = release_time(envelope["mailFrom"], now)
        except ValueError as e:
            raise invalid_properties(f"envelope {e}", "envelope") from None
        record.update(
            id=txn.new_id(),
            threadId=email["threadId"],
            envelope=envelope,
            sendAt=utc_date(held if held is not None else now),
            deliveryStatus={r["email"]: dict(QUEUED) for r in envelope["rcptTo"]},
            dsnBlobIds=[],
            mdnBlobIds=[],
        )
        sent = without_fields(raw, {"bcc"})  # §7.5: Bcc is never sent
        blob_id = ctx.blobs.put(sent)
        ctx.keep(blob_id, sent)
        release = held if held is not None else now + ctx.config.send_delay
        queue_message(txn, blob_id, len(sent), record["id"], envelope["mailFrom"],
                      envelope["rcptTo"], release, ctx.config.queue_lifetime,
                      bool(ctx.config.smarthost))  # fmt: skip
        queue = ctx.services.get("outbound")
        if queue is not None:
            ctx.after_commit.append(queue.wake)
        _remember_email(ctx, record["id"], record["emailId"])

    def update(self, ctx: Context, txn: Transaction, old: dict[str, Any],
               new: dict[str, Any]) -> None:  # fmt: skip
        _remember_email(ctx, old["id"], old["emailId"])
        if new["undoStatus"] == old["undoStatus"]:
            return
        if new["undoStatus"] != "canceled":
            raise invalid_properties("undoStatus may only be set to canceled", "undoStatus")
        rows = txn.outgoing(submission_id=old["id"])
        handed = any(s["delivered"] != "queued" for s in old["deliveryStatus"].values())
        if old["undoStatus"] != "pending" or handed or not rows or any(r.sending for r in rows):
            raise SetError("cannotUnsend", "the message has been sent already")
        for row in rows:
            txn.remove_outgoing(row.id)
            txn.release_blob(row.blob_id)
        new["deliveryStatus"] = {
            email: {**status, "smtpReply": "554 5.0.0 The submission was canceled",
                    "delivered": "no"}
            for email, status in old["deliveryStatus"].items()
        }  # fmt: skip

    def destroy(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        # §7: the deliveries go on; only the record of them goes.
        _remember_email(ctx, record["id"], record["emailId"])

    def after_set(self, ctx: Context, result: dict[str, Any]) -> Response:
        return implicit_email_set(ctx, result)


def _remember_email(ctx: Context, submission_id: str, email_id: str) -> None:
    """Which Email each submission of this /set is about, for onSuccess*Email."""
    ctx.args.setdefault("_emails", {})[submission_id] = email_id


def implicit_email_set(ctx: Context, result: dict[str, Any]) -> Response:
    """§7.5: one implicit Email/set for onSuccessUpdateEmail and onSuccessDestroyEmail, over
    the submissions whose create, update or destroy succeeded."""
    emails: dict[str, str] = ctx.args.get("_emails", {})
    succeeded = {v["id"] for v in (result.get("created") or {}).values()}
    succeeded |= set(result.get("updated") or {}) | set(result.get("destroyed") or [])

    def email_of(key: str) -> str | None:
        id = ctx.resolve_creation_id(key[1:]) if key.startswith("#") else key
        return emails.get(id) if id is not None and id in succeeded else None

    update = {}
    for key, patch in (ctx.args.get("onSuccessUpdateEmail") or {}).items():
        if (email_id := email_of(key)) is not None:
            update[email_id] = patch
    destroy = [e for k in ctx.args.get("onSuccessDestroyEmail") or [] if (e := email_of(k))]
    if not update and not destroy:
        return []
    args = {"accountId": ctx.args["accountId"], "update": update or None,
            "destroy": destroy or None}  # fmt: skip
    try:
        answer = ctx.registry.methods["Email/set"].handler(ctx, args)
    except MethodError as e:
        return [("error", e.to_json())]
    return [("Email/set", answer)] if isinstance(answer, dict) else answer


SUBMISSION_TYPE = register_type(
    DataType(
        "EmailSubmission",
        SUBMISSION,
        (
            Property("identityId", ID_KIND, immutable=True),
            Property("emailId", ID_KIND, immutable=True),
            Property("threadId", ID_KIND, server_set=True),
            Property("envelope", Nullable(EnvelopeKind()), default=None, immutable=True),
            Property("sendAt", UTC_DATE_KIND, server_set=True),
            Property("undoStatus", UndoStatus(), default="pending"),
            Property("deliveryStatus", Nullable(MapOf(STRING, OBJECT)), server_set=True),
            Property("dsnBlobIds", ListOf(ID_KIND), server_set=True),
            Property("mdnBlobIds", ListOf(ID_KIND), server_set=True),
        ),
        filters={
            "identityIds": Filter(ListOf(ID_KIND), lambda r, v: r["identityId"] in v),
            "emailIds": Filter(ListOf(ID_KIND), lambda r, v: r["emailId"] in v),
            "threadIds": Filter(ListOf(ID_KIND), lambda r, v: r["threadId"] in v),
            "undoStatus": Filter(UndoStatus(), lambda r, v: r["undoStatus"] == v),
            "before": Filter(UTC_DATE_KIND, lambda r, v: utc_seconds(r["sendAt"]) < utc_seconds(v)),
            "after": Filter(UTC_DATE_KIND, lambda r, v: utc_seconds(r["sendAt"]) >= utc_seconds(v)),
        },
        # §7.3 names "sentAt", the property is sendAt: both sort by it.
        sorts={
            "emailId": lambda r: r["emailId"],
            "threadId": lambda r: r["threadId"],
            "sentAt": lambda r: r["sendAt"],
            "sendAt": lambda r: r["sendAt"],
        },
        methods=("get", "changes", "set", "query", "queryChanges"),
        hooks=SubmissionHooks(),
        extra_args={
            "set": {
                "onSuccessUpdateEmail": (Nullable(MapOf(STRING, OBJECT)), None),
                "onSuccessDestroyEmail": (Nullable(ListOf(STRING)), None),
            }
        },
    )
)
