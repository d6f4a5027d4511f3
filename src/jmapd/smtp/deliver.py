"""Delivery: one message stored in one account's Inbox, durably, before anyone is told.

The message is stored as it came, with `Return-Path` and `Delivered-To` in front (RFC 5321
§4.4, RFC 9228), its bytes made durable before the transaction that references them commits;
parsing happens before the account's write lock is taken, so a large message holds up no
other writer. A delivery is a change of Email, Mailbox and Thread like any other, and also
of `EmailDelivery` (RFC 8621 §1.5), which only new mail changes: a client that wants to
notify its user of new mail pushes on that.
"""

from __future__ import annotations

from ..store.base import BlobStore
from ..store.sql import SQLStore
from ..types.email.store import parse, store_email, utc_now


class NoInbox(Exception):
    """The account has no mailbox with the inbox role (its user removed it)."""


def with_trace(raw: bytes, mail_from: str, recipient: str) -> bytes:
    """The message with Return-Path and Delivered-To in front."""
    sender = mail_from if mail_from not in ("", "<>") else ""
    return (f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode()) + raw


def deliver(store: SQLStore, blobs: BlobStore, account_id: str, raw: bytes) -> dict[str, int]:
    """Store the message in the account's Inbox (committed, durable, when this returns);
    the states it changed."""
    blob_id = blobs.put(raw)
    parsed = parse(blob_id, raw)
    with store.write(account_id) as txn:
        mailboxes = txn.get("Mailbox", None)
        inbox = next((id for id, m in mailboxes.items() if m.get("role") == "inbox"), None)
        if inbox is None:
            raise NoInbox(account_id)
        store_email(txn, parsed, {inbox: True}, {}, utc_now())
        txn.touch("EmailDelivery")
    blobs.ensure(blob_id, raw)  # housekeeping may have taken an unreferenced file meanwhile
    return txn.changed
