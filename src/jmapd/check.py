"""`jmapd check [--repair]`: what must hold between the records, the message index, the
blob references and the files, verified account by account; with --repair, what can be
rebuilt from the records is rebuilt (counts, the message index, threads, blob references,
states) and the files no row references are swept. The records themselves are the truth.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .protocol.registry import REGISTRY
from .store.base import Account, BlobStore
from .store.blobs import sweep
from .store.sql import SQLStore, SQLTransaction, queue_orphans
from .types.email.index import is_unread, millis, reindex_account


@dataclass(frozen=True)
class Problem:
    account: str
    what: str
    repaired: bool = False

    def __str__(self) -> str:
        fixed = " (repaired)" if self.repaired else ""
        return f"{self.account}: {self.what}{fixed}"


def _rows(txn: SQLTransaction, sql: str, *params: Any) -> list[Any]:
    return txn.db.execute(sql, (txn.account_id, *params)).fetchall()


def check_states(txn: SQLTransaction, repair: bool) -> list[str]:
    """Every record's modseq ≤ its type's state ≤ the account's modseq (states never go back:
    a client's state must not name the future)."""
    found = []
    (modseq,) = _rows(txn, "SELECT modseq FROM accounts WHERE account_id = ?")[0]
    newest = dict(_rows(txn, "SELECT type, max(modseq) FROM records WHERE account_id = ? "
                              "GROUP BY type"))  # fmt: skip
    states = dict(_rows(txn, "SELECT type, state FROM type_states WHERE account_id = ?"))
    top = max([modseq, *newest.values(), *states.values()], default=0)
    if top > modseq:
        found.append(f"the account's modseq {modseq} is behind its records' {top}")
        if repair:
            txn.db.execute("UPDATE accounts SET modseq = ? WHERE account_id = ?",
                           (top, txn.account_id))  # fmt: skip
    for type, record_modseq in newest.items():
        if type.startswith("_") or states.get(type, 0) >= record_modseq:
            continue
        found.append(f"{type} state {states.get(type, 0)} is behind its records' {record_modseq}")
        if repair:
            txn.db.execute(
                "INSERT INTO type_states (account_id, type, state) VALUES (?, ?, ?) ON CONFLICT "
                "(account_id, type) DO UPDATE SET state = excluded.state",
                (txn.account_id, type, record_modseq),
            )
    return found


def check_index(txn: SQLTransaction, emails: dict[str, Any], blobs: BlobStore,
                repair: bool) -> list[str]:  # fmt: skip
    """The message index holds exactly the live Emails, their mailboxes, keywords and words,
    and the kept mailbox counts add up."""
    found = []
    indexed = {r[0]: r[1] for r in _rows(txn, "SELECT id, thread_id FROM emails "
                                               "WHERE account_id = ?")}  # fmt: skip
    if set(indexed) != set(emails):
        missing, extra = len(set(emails) - set(indexed)), len(set(indexed) - set(emails))
        found.append(f"the message index lacks {missing} Emails and has {extra} it should not")
    expected = {(m, id, int(is_unread(e)), e["threadId"], millis(e["receivedAt"]))
                for id, e in emails.items() for m in e["mailboxIds"]}  # fmt: skip
    memberships = {tuple(r) for r in _rows(
        txn, "SELECT mailbox_id, email_id, unread, thread_id, received_at FROM email_mailboxes "
        "WHERE account_id = ?")}  # fmt: skip
    if memberships != expected:
        found.append(f"{len(memberships ^ expected)} mailbox memberships differ from the Emails")
    keywords = {(id, k) for id, e in emails.items() for k, v in e["keywords"].items() if v}
    if {tuple(r) for r in _rows(txn, "SELECT email_id, keyword FROM email_keywords "
                                     "WHERE account_id = ?")} != keywords:  # fmt: skip
        found.append("indexed keywords differ from the Emails")
    if txn.dialect == "sqlite":
        (texts,) = _rows(txn, "SELECT count(*) FROM email_words WHERE seq IN "
                              "(SELECT seq FROM emails WHERE account_id = ?)")[0]  # fmt: skip
        if texts != len(indexed):
            found.append(f"{len(indexed) - texts} indexed Emails have no full-text entry")
    if found and repair:
        reindex_account(blobs, txn)
    elif not found:
        found += check_counts(txn, repair)
    return found


def check_counts(txn: SQLTransaction, repair: bool) -> list[str]:
    counted: dict[str, list[int]] = {}
    threads: dict[tuple[str, str], list[int]] = {}
    for mailbox_id, thread_id, unread in _rows(
        txn, "SELECT mailbox_id, thread_id, unread FROM email_mailboxes WHERE account_id = ?"
    ):
        t = threads.setdefault((mailbox_id, thread_id), [0, 0])
        t[0], t[1] = t[0] + 1, t[1] + unread
    for (mailbox_id, _), (emails, unread) in threads.items():
        c = counted.setdefault(mailbox_id, [0, 0, 0, 0])
        c[0], c[1], c[2], c[3] = c[0] + emails, c[1] + unread, c[2] + 1, c[3] + (unread > 0)
    kept = {r[0]: list(r[1:]) for r in _rows(
        txn, "SELECT mailbox_id, emails, unread, threads, unread_threads FROM mailbox_counts "
        "WHERE account_id = ?")}  # fmt: skip
    kept = {m: c for m, c in kept.items() if any(c)}
    if kept == counted:
        return []
    if repair:  # rebuilt from the memberships, as migration 0003 did
        for table in ("mailbox_threads", "mailbox_counts"):
            txn.db.execute(f"DELETE FROM {table} WHERE account_id = ?", (txn.account_id,))
        for (mailbox_id, thread_id), (emails, unread) in threads.items():
            txn.db.execute(
                "INSERT INTO mailbox_threads (account_id, mailbox_id, thread_id, emails, unread) "
                "VALUES (?, ?, ?, ?, ?)",
                (txn.account_id, mailbox_id, thread_id, emails, unread),
            )
        for mailbox_id, c in counted.items():
            txn.db.execute(
                "INSERT INTO mailbox_counts (account_id, mailbox_id, emails, unread, threads, "
                "unread_threads) VALUES (?, ?, ?, ?, ?, ?)",
                (txn.account_id, mailbox_id, *c),
            )
    wrong = sorted(set(kept) | set(counted), key=str)
    wrong = [m for m in wrong if kept.get(m) != counted.get(m)]
    return [f"the counts of {len(wrong)} mailboxes are wrong"]


def check_threads(txn: SQLTransaction, emails: dict[str, Any], repair: bool) -> list[str]:
    """Each Thread lists exactly its Emails, in receivedAt order; each Email's thread lives."""
    members: dict[str, list[str]] = {}
    for id, email in emails.items():
        members.setdefault(email["threadId"], []).append(id)
    threads = txn.get("Thread", None)
    wrong = [
        t
        for t in set(threads) | set(members)
        if sorted(threads.get(t, {}).get("emailIds", [])) != sorted(members.get(t, []))
    ]
    for thread_id in wrong if repair else ():
        received = {e: emails[e]["receivedAt"] for e in members.get(thread_id, [])}
        if not received:
            txn.destroy("Thread", thread_id)
            continue
        keys = threads.get(thread_id, {}).get("keys", [])
        ordered = sorted(received, key=lambda e: (received[e], e))
        txn.put("Thread", thread_id, {"emailIds": ordered, "receivedAt": received, "keys": keys})
    return [f"{len(wrong)} threads do not list their Emails"] if wrong else []


def check_blobs(txn: SQLTransaction, emails: dict[str, Any], blobs: BlobStore,
                repair: bool) -> list[str]:  # fmt: skip
    """Each blob a live record uses is referenced as often as it is used, no other blob is
    referenced for good, and every referenced blob has its file."""
    found = []
    used: Counter[str] = Counter()
    for name, datatype in REGISTRY.types.items():
        records = emails if name == "Email" else txn.get(name, None)
        for record in records.values():
            used.update(datatype.hooks.blobs(record))
    used.update(row.blob_id for row in txn.outgoing())  # each queued row holds its message
    kept = {r[0]: r[1] for r in _rows(txn, "SELECT blob_id, refs FROM blobs "
                                           "WHERE account_id = ? AND uploader = ''")}  # fmt: skip
    wrong = [b for b in set(used) | set(kept) if used.get(b, 0) != kept.get(b, 0)]
    if wrong:
        found.append(f"{len(wrong)} blobs are referenced more or less often than they are used")
        if repair:
            for blob_id in wrong:
                txn.db.execute("DELETE FROM blobs WHERE account_id = ? AND blob_id = ? AND "
                               "uploader = ''", (txn.account_id, blob_id))  # fmt: skip
                if used.get(blob_id):
                    txn.db.execute(
                        "INSERT INTO blobs (account_id, blob_id, uploader, size, expires, refs) "
                        "VALUES (?, ?, '', ?, NULL, ?)",
                        (txn.account_id, blob_id, _size(blobs, blob_id), used[blob_id]),
                    )
            queue_orphans(txn.db, [b for b in wrong if not used.get(b)])
    referenced = {r[0] for r in _rows(txn, "SELECT DISTINCT blob_id FROM blobs "
                                           "WHERE account_id = ?")} | set(used)  # fmt: skip
    lost = [b for b in referenced if not blobs.exists(b)]
    if lost:
        found.append(f"{len(lost)} referenced blobs have no file (lost: restore from a backup)")
    return found


def _size(blobs: BlobStore, blob_id: str) -> int:
    data = blobs.read(blob_id)
    return len(data) if data is not None else 0


CHECKS: list[Callable[[SQLTransaction, dict[str, Any], BlobStore, bool], list[str]]] = [
    lambda txn, emails, blobs, repair: check_states(txn, repair),
    lambda txn, emails, blobs, repair: check_threads(txn, emails, repair),
    check_index,
    check_blobs,
]


def check_account(store: SQLStore, account: Account, blobs: BlobStore,
                  repair: bool) -> list[Problem]:  # fmt: skip
    """The problems of one account, checked (and repaired) in one transaction."""
    problems = []
    with store.write(account.id) as txn:
        emails = txn.get("Email", None)
        for check in CHECKS:
            problems += [Problem(account.name, what, repair) for what in
                         check(txn, emails, blobs, repair)]  # fmt: skip
    return problems


def check_all(store: SQLStore, blobs: BlobStore, repair: bool, grace: float,
              report: Callable[[Problem], None]) -> list[Problem]:  # fmt: skip
    problems = []
    for account in store.list_accounts():
        for problem in check_account(store, account, blobs, repair):
            report(problem)
            problems.append(problem)
    unreferenced = sweep(store, blobs, grace, remove=repair)
    if unreferenced:
        problem = Problem("blob directory", f"{unreferenced} files no row references", repair)
        report(problem)
        problems.append(problem)
    return problems
