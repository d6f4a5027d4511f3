"""Emails in the store: ingest (parse once, keep the summary), threads, and what mailboxes hold.

An Email record holds its metadata (blobId, threadId, mailboxIds, keywords, size, receivedAt)
and the summary of its parsed message, so Email/get never parses the blob again for anything
but body values. A body part's blob is derived from the message's (`{blobId}_{partId}`), and
decoded from the message when it is read: the message is stored once. (Messages stored before
that keep the blobs their parts were stored in.) Threading keys are internal records (type
"_ThreadKey"): one per Message-ID, naming its thread and subject.

Every Email is also in the message index (index.py), which answers Email/query and the
mailbox counts.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

from ...mail import Message, parse_message
from ...mail.params import parse_value
from ...mail.summary import search_texts, searched_parts
from ...mail.values import encoded_body_value
from ...protocol.blobs import DERIVERS
from ...protocol.registry import Context
from ...protocol.values import utc_date
from ...store.base import BlobStore, Transaction
from ...store.mailindex import MessageEntry
from .. import mailbox
from .index import entry, index_email, index_flags


def utc_now() -> str:
    return utc_date(time.time())


def received_at(message: Message) -> str:
    """RFC 8621 §4.8: the time of the most recent Received header, else now."""
    for header in reversed(message.header("Received", "Raw", all=True)):
        try:
            when = parsedate_to_datetime(header.rsplit(";", 1)[-1].strip())
        except (TypeError, ValueError, IndexError):
            continue
        if when.tzinfo is not None:
            return utc_date(when.timestamp())
    return utc_now()


def _leaves(part: dict[str, Any]) -> list[dict[str, Any]]:
    if part["subParts"] is None:
        return [part]
    return [leaf for sub in part["subParts"] for leaf in _leaves(sub)]


PART_BLOB = re.compile(r"(.+)_([0-9]{1,6})")


def part_blob_id(message_blob_id: str, part_id: str) -> str:
    return f"{message_blob_id}_{part_id}"


def _derive_part(blob_id: str) -> tuple[str, Callable[[bytes], bytes | None]] | None:
    """A body part's blob: decoded from its message when it is read (protocol/blobs.py)."""
    match = PART_BLOB.fullmatch(blob_id)
    if match is None:
        return None
    part_id = match[2]

    def extract(raw: bytes) -> bytes | None:
        try:
            return parse_message(raw).part_content(part_id)
        except KeyError:
            return None

    return match[1], extract


DERIVERS.append(_derive_part)


def summarise(message: Message) -> dict[str, Any]:
    """What Email/get shows without the blob."""
    structure = message.body_structure()
    return {
        "headers": message.headers,
        "properties": message.properties(),
        "bodyStructure": structure,
        "textBody": [p["partId"] for p in message.text_body()],
        "htmlBody": [p["partId"] for p in message.html_body()],
        "attachments": [p["partId"] for p in message.attachments()],
        "hasAttachment": message.has_attachment(),
        "preview": message.preview(),
        "spans": message.spans(),
        "threadingKeys": {
            "messageIds": list(message.threading_keys().message_ids),
            "subject": message.threading_keys().subject,
        },
    }


class StoredMessage:
    """A stored summary with the interface of mail.Message that the Email view uses; the blob
    is parsed only when body values are asked for."""

    def __init__(self, summary: dict[str, Any], blob_id: str, blobs: BlobStore,
                 raw: bytes | None = None) -> None:  # fmt: skip
        """`raw`: the message's bytes when they were read already (BlobStore.read_many)."""
        self.summary = summary
        self.blob_id = blob_id
        self._load = partial(blobs.read, blob_id)
        self._raw: bytes | None = raw
        self._message: Message | None = None
        self._parts = {p["partId"]: p for p in _leaves(summary["bodyStructure"])}

    @property
    def headers(self) -> list[dict[str, str]]:
        return list(self.summary["headers"])

    def properties(self) -> dict[str, Any]:
        return dict(self.summary["properties"])

    def body_structure(self) -> dict[str, Any]:
        return dict(self.summary["bodyStructure"])

    def text_body(self) -> list[dict[str, Any]]:
        return [self._parts[p] for p in self.summary["textBody"]]

    def html_body(self) -> list[dict[str, Any]]:
        return [self._parts[p] for p in self.summary["htmlBody"]]

    def attachments(self) -> list[dict[str, Any]]:
        return [self._parts[p] for p in self.summary["attachments"]]

    def has_attachment(self) -> bool:
        return bool(self.summary["hasAttachment"])

    def preview(self) -> str:
        return str(self.summary["preview"])

    def body_value(self, part_id: str, max_bytes: int | None = None) -> dict[str, Any]:
        """A part's value, read from its span of the message's octets (the message is not
        parsed again; one stored before spans were kept is)."""
        if self._raw is None:
            self._raw = self._load() or b""
        span = self.summary.get("spans", {}).get(part_id)
        if span is None:
            if self._message is None:
                self._message = parse_message(self._raw)
            return self._message.body_value(part_id, max_bytes)
        part = self._parts[part_id]
        body = self._raw[span[0] : span[0] + span[1]]
        encoding = next((parse_value(h["value"])[0] for h in part["headers"]
                         if h["name"].lower() == "content-transfer-encoding"), "")  # fmt: skip
        is_html = part["type"] == "text/html"
        return encoded_body_value(body, encoding or "", part["charset"], is_html, max_bytes)

    def part_blob(self, part_id: str) -> str:
        stored = self._parts[part_id].get("blobId")  # a message stored before parts derived
        return str(stored) if stored else part_blob_id(self.blob_id, part_id)

    def search_texts(self) -> Iterator[str]:
        """The body text search reads (mail.Message.search_text), part by part, each decoded
        only when it is asked for."""
        parts = searched_parts(self.text_body(), self.html_body(), self.attachments())
        return search_texts(
            parts, lambda part: str(self.body_value(part["partId"])["value"]),
            lambda part: str(part["type"]),
        )  # fmt: skip


# -- threads -----------------------------------------------------------------------------------


def _key_id(message_id: str) -> str:
    return "k" + hashlib.sha256(message_id.encode()).hexdigest()[:40]


def assign_thread(txn: Transaction, keys: dict[str, Any]) -> tuple[str, list[str]]:
    """The thread of a new Email: that of an Email sharing a Message-ID with it (its own,
    In-Reply-To or References) and the same normalised subject; else a new thread
    (docs/mail.md). Its Message-IDs then name that thread: those new, and those whose
    thread is gone (a key outlived its thread only if it was written before keys went with
    their threads). Returns the thread and the keys written."""
    ids = [_key_id(m) for m in keys["messageIds"]]
    known = txn.get("_ThreadKey", ids) if ids else {}
    live = txn.get("Thread", list({k["threadId"] for k in known.values()})) if known else {}
    thread_id = (
        next(
            (
                k["threadId"]
                for k in known.values()
                if k["subject"] == keys["subject"] and k["threadId"] in live
            ),
            None,
        )
        or "T" + txn.new_id()
    )
    written = [k for k in ids if k not in known or known[k]["threadId"] not in live]
    for key_id in written:
        txn.put("_ThreadKey", key_id, {"threadId": thread_id, "subject": keys["subject"]})
    return thread_id, written


def in_mailbox_by_message_id(txn: Transaction, message_id: str, mailbox_id: str) -> bool:
    """Whether an Email whose Message-ID is `message_id` is in the mailbox: looked up through
    the thread that Message-ID's threading key names, newest member first, not by reading
    the account's mail. The key names the thread of the first message that mentioned the id;
    a message with it that went into another thread (its subject differed) is not found."""
    key = txn.get("_ThreadKey", [_key_id(message_id)]).get(_key_id(message_id))
    thread = txn.get("Thread", [key["threadId"]]).get(key["threadId"]) if key else None
    members = list(reversed(thread["emailIds"])) if thread else []
    for start in range(0, len(members), 50):
        for email in txn.get("Email", members[start : start + 50]).values():
            ids = email["summary"]["properties"].get("messageId") or []
            if mailbox_id in email["mailboxIds"] and message_id in ids:
                return True
    return False


def set_thread_members(
    txn: Transaction,
    thread_id: str,
    add: tuple[str, str] | None = None,
    remove: str | None = None,
    keys: Sequence[str] = (),
) -> None:
    """Add an Email (id, receivedAt), with the threading keys that now name the thread, or
    remove one; emailIds stay ordered by receivedAt (§3), which the thread keeps beside them
    so no Email is read. No members, no thread: and its keys go with it, so the Message-IDs
    and subjects of deleted mail are not kept, and new mail threads afresh."""
    empty: dict[str, Any] = {"emailIds": [], "receivedAt": {}, "keys": []}
    thread = txn.get("Thread", [thread_id]).get(thread_id, empty)
    received = {e: t for e, t in thread["receivedAt"].items() if e != remove}
    thread_keys = [*thread.get("keys", []), *keys]
    if add is not None:
        received[add[0]] = add[1]
    if not received:
        txn.destroy("Thread", thread_id)
        for key_id in thread_keys:
            txn.destroy("_ThreadKey", key_id)
        return
    members = sorted(received, key=lambda e: (received[e], e))
    txn.put("Thread", thread_id, {"emailIds": members, "receivedAt": received, "keys": thread_keys})


# -- what mailboxes hold -------------------------------------------------------------------------


class EmailContents(mailbox.Contents):
    """Mailbox counts (§2) and contents, from the message index."""

    def counts(self, txn: Transaction, mailbox_ids: list[str]) -> dict[str, dict[str, int]]:
        return {
            id: dict(zip(mailbox.COUNTS, found, strict=True))
            for id, found in txn.mailbox_counts(mailbox_ids).items()
        }

    def has_email(self, txn: Transaction, mailbox_id: str) -> bool:
        return bool(txn.mailbox_messages(mailbox_id, limit=1))

    def remove_all(self, ctx: Context, txn: Transaction, mailbox_id: str) -> None:
        ids = txn.mailbox_messages(mailbox_id)
        for start in range(0, len(ids), 500):
            for email_id, email in txn.get("Email", ids[start : start + 500]).items():
                del email["mailboxIds"][mailbox_id]
                if email["mailboxIds"]:
                    txn.put("Email", email_id, email)
                    index_flags(txn, email_id, email)
                else:
                    txn.destroy("Email", email_id)
                    release_email(txn, email_id, email)
                bump_mailboxes(txn, email["mailboxIds"])


def release_email(txn: Transaction, email_id: str, email: dict[str, Any]) -> None:
    """What a destroyed Email held: its place in its thread, its index entry, and its
    blobs (the message, and the parts of a message stored before parts were derived), which
    nobody can read once no other Email of the account uses them."""
    set_thread_members(txn, email["threadId"], remove=email_id)
    txn.unindex_message(email_id)
    txn.release_blob(email["blobId"])
    for part in _leaves(email["summary"]["bodyStructure"]):
        if part.get("blobId"):
            txn.release_blob(part["blobId"])


def bump_mailboxes(txn: Transaction, *mailbox_sets: dict[str, Any]) -> None:
    """The counts of these mailboxes changed (RFC 8621 §2.2 updatedProperties)."""
    for mailbox_id in {m for s in mailbox_sets for m in s}:
        txn.bump("Mailbox", mailbox_id)


@dataclass(frozen=True)
class Parsed:
    """A message with all the slow work done before any transaction (the write lock is held
    for database writes only): parsed once, summarised, its index entry's words cut."""

    blob_id: str
    size: int
    summary: dict[str, Any]
    received_at: str  # of its most recent Received header, else now
    entry: MessageEntry  # but its thread and receivedAt


def parse(blob_id: str, raw: bytes) -> Parsed:
    message = parse_message(raw)
    summary = summarise(message)
    found = entry(summary, len(raw), message.search_text())
    return Parsed(blob_id, len(raw), summary, received_at(message), found)


def store_email(
    txn: Transaction,
    parsed: Parsed,
    mailbox_ids: dict[str, bool],
    keywords: dict[str, bool],
    received: str | None,
) -> tuple[str, dict[str, Any]]:
    """Add a parsed message to the account: threaded, indexed, counted in its mailboxes."""
    txn.keep_blob(parsed.blob_id, parsed.size)
    thread_id, thread_keys = assign_thread(txn, parsed.summary["threadingKeys"])
    record: dict[str, Any] = {
        "blobId": parsed.blob_id,
        "threadId": thread_id,
        "mailboxIds": mailbox_ids,
        "keywords": keywords,
        "size": parsed.size,
        "receivedAt": received or parsed.received_at,
        "summary": parsed.summary,
    }
    email_id = txn.new_id()
    txn.put("Email", email_id, record)
    index_email(txn, email_id, record, parsed.entry)
    set_thread_members(txn, thread_id, add=(email_id, record["receivedAt"]), keys=thread_keys)
    bump_mailboxes(txn, mailbox_ids)
    return email_id, record


mailbox.CONTENTS = EmailContents()
