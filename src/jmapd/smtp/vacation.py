"""Vacation replies (RFC 8621 §8) as RFC 3834 asks of a personal responder.

Called for each message stored in an Inbox (smtp/deliver.py, and local deliveries of the
outbound queue), in the same transaction: the reply is queued exactly when the message is
stored. No reply goes
- while the VacationResponse is disabled, or before its fromDate, or from its toDate on;
- to a null return path, to mail with Auto-Submitted other than "no", Precedence bulk, list
  or junk, or any List-* field, to MAILER-DAEMON, postmaster, owner-* and *-request;
- to the account's own addresses, or when none of them is in To or Cc (Bcc, lists: §2);
- to a sender answered in the last 7 days (until the response is changed).
The reply has a null return path and Auto-Submitted: auto-replied (§3.1.7), so it is never
answered nor bounced in turn.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any

from ..mail.html import html_to_text
from ..store.base import BlobStore, Transaction
from ..store.outbox import queue_message
from ..types.email.store import Parsed
from ..types.vacation import ANSWERED, SINGLETON, TYPE

WEEK = 7 * 86400
LISTS = ("list-id", "list-unsubscribe", "list-post", "list-help", "list-subscribe",
         "list-owner", "list-archive")  # fmt: skip
DEFAULT_TEXT = "I am away at the moment and will read your message when I am back.\n"


def _headers(summary: dict[str, Any]) -> dict[str, str]:
    """Each field's first value (the trace fields delivery put in front come first)."""
    out: dict[str, str] = {}
    for field in summary["headers"]:
        out.setdefault(field["name"].lower(), field["value"].strip())
    return out


def _machine(sender: str) -> bool:
    local = sender.rpartition("@")[0].lower()
    return local in ("mailer-daemon", "postmaster") or local.startswith("owner-") or \
        local.endswith("-request")  # fmt: skip


def wanted(txn: Transaction, headers: dict[str, str], now: float) -> str | None:
    """The sender to answer, if RFC 3834 and the VacationResponse allow a reply."""
    vacation = txn.get(TYPE, [SINGLETON]).get(SINGLETON)
    if not vacation or not vacation["isEnabled"]:
        return None
    start, end = vacation["fromDate"], vacation["toDate"]
    if (start and now < _seconds(start)) or (end and now >= _seconds(end)):
        return None
    sender = headers.get("return-path", "").strip("<> ")
    if not sender or _machine(sender) or txn.account_for_address(sender) == txn.account_id:
        return None
    if headers.get("auto-submitted", "no").lower() != "no" or any(h in headers for h in LISTS):
        return None
    if headers.get("precedence", "").lower() in ("bulk", "list", "junk"):
        return None
    named = [a for _, a in getaddresses([headers.get("to", ""), headers.get("cc", "")]) if a]
    if not any(txn.account_for_address(a) == txn.account_id for a in named):
        return None
    answered = txn.get(ANSWERED, [SINGLETON]).get(SINGLETON, {})
    if now - answered.get(sender.lower(), 0) < WEEK:
        return None
    answered = {k: v for k, v in answered.items() if now - v < WEEK} | {sender.lower(): now}
    txn.put(ANSWERED, SINGLETON, answered)
    return sender


def _seconds(date: str) -> float:
    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


def reply(vacation: dict[str, Any], headers: dict[str, str], host: str, sender: str) -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = headers.get("delivered-to", "")
    message["To"] = sender
    message["Subject"] = vacation["subject"] or f"Auto: {headers.get('subject', '')}".strip()
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=host)
    if headers.get("message-id"):
        message["In-Reply-To"] = headers["message-id"]
        message["References"] = " ".join(filter(None, [headers.get("references"),
                                                       headers["message-id"]]))  # fmt: skip
    message["Auto-Submitted"] = "auto-replied"  # RFC 3834 §5
    html = vacation["htmlBody"]
    text = vacation["textBody"] or (html_to_text(html) if html else DEFAULT_TEXT)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


class Replier:
    """Queues the vacation reply to each message stored, if one is due (deliver.After)."""

    def __init__(self, config: Any, blobs: BlobStore, host: str) -> None:
        self.config, self.blobs, self.host = config, blobs, host
        self.queued = False  # set when a reply was queued, for the caller to wake the queue

    def __call__(self, txn: Transaction, parsed: Parsed) -> None:
        now = time.time()
        headers = _headers(parsed.summary)
        sender = wanted(txn, headers, now)
        if sender is None:
            return
        vacation = txn.get(TYPE, [SINGLETON])[SINGLETON]
        message = reply(vacation, headers, self.host, sender)
        blob_id = self.blobs.put(message)
        queue_message(txn, blob_id, len(message), "", {"email": "", "parameters": None},
                      [{"email": sender, "parameters": None}], now,
                      self.config.queue_lifetime, bool(self.config.smarthost))  # fmt: skip
        self.queued = True
