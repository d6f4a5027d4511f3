"""Delivery: one message stored in one account's Inbox, durably, before anyone is told.

The message is stored as it came, with `Return-Path` and `Delivered-To` in front (RFC 5321
§4.4, RFC 9228), its bytes made durable before the transaction that references them commits;
parsing happens before the account's write lock is taken, so a large message holds up no
other writer. With duplicate suppression on, a message whose Message-ID is in the Inbox
already is acknowledged but not stored again. A delivery is a change of Email, Mailbox and
Thread like any other, and also of `EmailDelivery` (RFC 8621 §1.5), which only new mail
changes: a client that wants to notify its user of new mail pushes on that.
"""

from __future__ import annotations

from collections.abc import Callable

from ..protocol.engine.set import one_record
from ..protocol.errors import SetError
from ..store.base import BlobStore, Transaction
from ..store.sql import SQLStore
from ..types.email.store import (
    Parsed,
    in_mailbox_by_message_id,
    parse,
    store_email,
    utc_now,
)


class NoInbox(Exception):
    """The account has no mailbox with the inbox role (its user removed it)."""


def with_trace(raw: bytes, mail_from: str, recipient: str) -> bytes:
    """The message with Return-Path and Delivered-To in front."""
    sender = mail_from if mail_from not in ("", "<>") else ""
    return (f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode()) + raw


Outcome = dict[str, int] | Exception  # the states a delivery changed, or why it failed


After = Callable[[Transaction, Parsed], object]  # what follows a message stored (vacation)


def inbox_of(txn: Transaction) -> str:
    mailboxes = txn.get("Mailbox", None)
    inbox = next((id for id, m in mailboxes.items() if m.get("role") == "inbox"), None)
    if inbox is None:
        raise NoInbox(txn.account_id)
    return inbox


def into_inbox(txn: Transaction, parsed: Parsed, inbox: str, unique: bool = False,
               after: After | None = None) -> bool:  # fmt: skip
    """Store one message in the Inbox; False when `unique` finds it there already."""
    if unique and _in_inbox(txn, parsed, inbox):
        return False
    store_email(txn, parsed, {inbox: True}, {}, utc_now())
    txn.touch("EmailDelivery")
    if after is not None:
        after(txn, parsed)
    return True


def prepare(blobs: BlobStore, raw: bytes) -> Parsed:
    """The slow part of a delivery, before any lock and beside other deliveries: the
    message parsed, its bytes durable in the blob store."""
    return parse(blobs.put(raw), raw)


def deliver(store: SQLStore, blobs: BlobStore,
            messages: list[tuple[str, bytes, Parsed]], unique: bool = False,
            after: After | None = None) -> list[Outcome]:  # fmt: skip
    """Store each (account id, message, its `prepare`) in the account's Inbox; when this
    returns, what it stored is committed and durable. The messages of one account share one
    transaction (one commit, one fsync: group commit), each in a savepoint of its own, so one
    that fails fails alone. `unique`: a message whose Message-ID is in the Inbox already is
    not stored again; its outcome is no change ({})."""
    outcomes: list[Outcome | None] = [None] * len(messages)
    by_account: dict[str, list[int]] = {}
    for i, (account_id, _, _) in enumerate(messages):
        by_account.setdefault(account_id, []).append(i)
    for account_id, indexes in by_account.items():
        try:
            with store.write(account_id) as txn:
                inbox = inbox_of(txn)
                for i in indexes:
                    try:
                        with one_record(txn):  # a bug is logged, and fails this one alone
                            if not into_inbox(txn, messages[i][2], inbox, unique, after):
                                outcomes[i] = {}  # acknowledged, not stored again
                    except SetError as e:
                        outcomes[i] = e
        except Exception as e:  # the account's transaction failed: all of its messages did
            for i in indexes:
                outcomes[i] = outcomes[i] or e
            continue
        for i in indexes:
            if outcomes[i] is None:
                # housekeeping may have taken the file while nothing referenced it
                blobs.ensure(messages[i][2].blob_id, messages[i][1])
                outcomes[i] = txn.changed
    done = [o for o in outcomes if o is not None]  # each message has its outcome by now
    assert len(done) == len(messages)
    return done


def _in_inbox(txn: Transaction, parsed: Parsed, inbox: str) -> bool:
    ids = parsed.summary["properties"].get("messageId") or []
    return bool(ids) and in_mailbox_by_message_id(txn, ids[0], inbox)
