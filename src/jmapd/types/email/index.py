"""Email in the message index (store/mailindex.py): what is written when an Email is stored or
its mailboxes and keywords change, Email/query and its queryChanges dependents, mailbox counts,
and `jmapd reindex`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ...mail import parse_message
from ...mail.search import words
from ...mail.thread_keys import base_subject
from ...protocol.engine.query import Comparator, Results, collation_text, parse_sort, walk_filter
from ...protocol.registry import Context
from ...protocol.values import utc_seconds
from ...store.base import BlobStore, Transaction
from ...store.mailindex import FIELDS, MessageEntry, MessageQuery

UNREAD_UNLESS = ("$seen", "$draft")
COLLATION_LETTERS = {"i;unicode-casemap": "u", "i;ascii-casemap": "a", "i;ascii-numeric": "n"}


def millis(date: str | None) -> int | None:
    """A UTCDate or RFC 3339 date-time as milliseconds since the epoch."""
    if date is None:
        return None
    return round(utc_seconds(date) * 1000)


def is_unread(email: dict[str, Any]) -> bool:
    return not any(email["keywords"].get(k) for k in UNREAD_UNLESS)


def _first_address(addresses: list[dict[str, Any]] | None) -> str:
    """§4.4.2 from/to: the first address's name, else its email, else ""."""
    if not addresses:
        return ""
    return str(addresses[0].get("name") or addresses[0].get("email") or "")


def _address_words(addresses: list[dict[str, Any]] | None) -> list[str]:
    return words(" ".join(f"{a.get('name') or ''} {a.get('email') or ''}" for a in addresses or []))


def entry(
    summary: dict[str, Any], size: int, body_text: str, thread_id: str = "",
    received_at: str | None = None,
) -> MessageEntry:  # fmt: skip
    """A message's entry in the index, from its summary and the body text of it (its thread
    and receivedAt may be filled in later, once they are known)."""
    properties = summary["properties"]
    sort_values = {
        "from": _first_address(properties["from"]),
        "to": _first_address(properties["to"]),
        "subject": base_subject(properties["subject"] or ""),
    }
    sort_text = {
        f"{name}_{letter}": collation_text(collation, value)
        for name, value in sort_values.items()
        for collation, letter in COLLATION_LETTERS.items()
    }
    found = {name: _address_words(properties[name]) for name in ("from", "to", "cc", "bcc")}
    found["subject"] = words(properties["subject"] or "")
    found["body"] = words(body_text)
    assert set(found) == set(FIELDS)
    return MessageEntry(
        thread_id=thread_id,
        received_at=millis(received_at) or 0,
        size=size,
        sent_at=millis(properties["sentAt"]),
        has_attachment=bool(summary["hasAttachment"]),
        sort_text=sort_text,
        words=found,
    )


def index_email(txn: Transaction, id: str, record: dict[str, Any], found: MessageEntry) -> None:
    """Index an Email, in the transaction that stores it: its entry (made before, the slow
    part) with the thread and receivedAt the record has."""
    txn.index_message(
        id,
        replace(found, thread_id=record["threadId"], received_at=millis(record["receivedAt"]) or 0),
    )
    index_flags(txn, id, record)


def index_flags(txn: Transaction, id: str, record: dict[str, Any]) -> None:
    """Index an Email's mailboxes and keywords (new, or changed by Email/set)."""
    txn.index_flags(
        id, record["threadId"], millis(record["receivedAt"]) or 0, list(record["mailboxIds"]),
        [k for k, v in record["keywords"].items() if v], is_unread(record),
    )  # fmt: skip


# -- Email/query ----------------------------------------------------------------------------------


def _combine(operator: str, parts: list[Any]) -> Any:
    return (operator.lower(), parts)


def condition(dt: Any, filter: Any) -> Any:
    """An Email/query filter in the index's vocabulary (checked on the way); None for none."""
    if filter is None:
        return None
    return walk_filter(dt, filter, lambda f, value: f.index(value), _combine)


def message_query(ctx: Context, dt: Any, filter: Any, sort: Any) -> MessageQuery:
    """Email/query's filter and sort in the index's vocabulary (checked on the way)."""
    return MessageQuery(
        condition(dt, filter),
        [_sort_key(dt, c) for c in parse_sort(dt, sort)],
        bool(ctx.args.get("collapseThreads")),
    )


def _sort_key(dt: Any, c: Comparator) -> tuple[str, bool, str | None]:
    key = str(dt.sorts[c.property])
    if key in ("from", "to", "subject"):
        key += "_" + COLLATION_LETTERS[c.collation]
    return (key, c.is_ascending, c.extra.get("keyword"))


def query(ctx: Context, dt: Any, txn: Transaction, filter: Any, sort: Any) -> Results:
    return txn.query_messages(message_query(ctx, dt, filter, sort))


def _involves_threads(query: MessageQuery) -> bool:
    """Whether an Email's place in the results hangs on other Emails of its thread."""

    def walk(c: Any) -> bool:
        if c[0] in ("and", "or", "not"):
            return any(walk(sub) for sub in c[1])
        return bool(c[0] in ("thread_all", "thread_some"))

    return (
        query.collapse_threads
        or (query.condition is not None and walk(query.condition))
        or any(key in ("thread_all", "thread_some") for key, _, _ in query.sort)
    )


def query_dependents(
    ctx: Context, dt: Any, txn: Transaction, since: int, changed: set[str]
) -> set[str]:
    """With collapseThreads or a thread keyword filter or sort, every Email of a thread that
    changed (an Email of it changed, came or went) may have moved."""
    if not _involves_threads(message_query(ctx, dt, ctx.args.get("filter"), ctx.args.get("sort"))):
        return set()
    threads = {e["threadId"] for e in txn.get("Email", list(changed)).values()}
    threads |= {r.id for r in txn.changes("Thread", since)}
    return {id for t in txn.get("Thread", list(threads)).values() for id in t["emailIds"]}


# -- reindex --------------------------------------------------------------------------------------


def reindex_account(
    blobs: BlobStore, txn: Transaction, progress: Callable[[int, int], None] = lambda n, t: None
) -> int:
    """Rebuild one account's index from its Email records and their messages; progress is
    told (done, total) as it goes."""
    txn.drop_message_index()
    ids = [c.id for c in txn.changes("Email", 0) if not c.destroyed]
    for start in range(0, len(ids), 200):
        for id, record in txn.get("Email", ids[start : start + 200]).items():
            message = parse_message(blobs.read(record["blobId"]) or b"")
            found = entry(record["summary"], record["size"], message.search_text())
            index_email(txn, id, record, found)
        progress(min(start + 200, len(ids)), len(ids))
    return len(ids)
