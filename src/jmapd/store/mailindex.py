"""The message index: what mail search filters and sorts by, mailbox counts, and full-text
words, in tables beside the records (migration 0002) so queries run in the database.

The Email type writes an entry when it stores a message and the flags when they change; it
asks with a `MessageQuery`, a condition tree in the vocabulary below, and gets a
`MessageResults` that reads ids a page at a time: nothing loads a whole mailbox to answer a
page. Words come already cut and folded (mail/search.py) so SQLite's FTS5 and PostgreSQL's
tsvector index exactly the same words and match alike.

Conditions (nested tuples):
    ("and" | "or" | "not", [condition, ...])       not: none of them
    ("mailbox", id)          ("mailbox_other_than", [id, ...])
    ("received_before", ms)  ("received_after", ms)        after is inclusive
    ("min_size", n)          ("max_size", n)               max is exclusive
    ("keyword", k)           ("thread_all", k)   ("thread_some", k)
    ("attachment", bool)
    ("words", field, [Term]) field: subject from to cc bcc body, or all of them ("all")
    ("header", name, value | None)                 name folded to lower case
Sort keys: received_at, size, sent_at, {from,to,subject}_{u,a,n} (per collation), and
keyword, thread_all, thread_some with a keyword argument.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ..mail.search import Term
    from .sql import Connection

FIELDS = ("subject", "from", "to", "cc", "bcc", "body")
INDEX_TABLES = ("emails", "email_mailboxes", "email_keywords", "mailbox_threads", "mailbox_counts")
SORT_TEXT = tuple(f"{f}_{c}" for f in ("from", "to", "subject") for c in "uan")
MAX_WORDS = 200_000  # words of one field indexed
MAX_DOCUMENT = 1_000_000  # octets of one message's words, as a PostgreSQL tsvector (< 1 MiB)
FIRST_PAGE = 256
TEXT_COLUMNS = "subject, from_, to_, cc, bcc, body"  # of email_text, in FIELDS order


@dataclass(frozen=True)
class MessageEntry:
    """The immutable facts of one message, as filtered and sorted."""

    thread_id: str
    received_at: int  # ms since the epoch
    size: int
    sent_at: int | None
    has_attachment: bool
    sort_text: dict[str, str]  # SORT_TEXT → key
    words: dict[str, list[str]]  # FIELDS → folded words


@dataclass(frozen=True)
class MessageQuery:
    condition: tuple[Any, ...] | None = None
    sort: list[tuple[str, bool, str | None]] = field(default_factory=list)
    collapse_threads: bool = False


class MessageResults:
    """The ids matching a query, in order, read from the database as they are needed."""

    def __init__(
        self, db: Connection, select: tuple[str, list[Any]], count: tuple[str, list[Any]],
        collapse: bool,
    ) -> None:  # fmt: skip
        self._db, self._select, self._count, self.collapse = db, select, count, collapse

    def rows(self, start: int = 0, wanted: int = FIRST_PAGE) -> Iterator[tuple[str, str]]:
        """(id, threadId) from position `start`, in pages that grow as they are read, the first
        of `wanted` rows (reading more than a page needs costs: a search reads the account
        until it has found them)."""
        size = max(wanted, 1)
        while True:
            rows = self._db.execute(
                f"{self._select[0]} LIMIT ? OFFSET ?", [*self._select[1], size, start]
            ).fetchall()
            for row in rows:
                yield row[0], row[1]
            if len(rows) < size:
                return
            start += size
            size = min(size * 4, 65536)

    def ids(self, start: int = 0, wanted: int = FIRST_PAGE) -> Iterator[str]:
        """The ids from position `start`, `wanted` of them or more; with collapseThreads, the
        first of each thread."""
        if not self.collapse:
            yield from (id for id, _ in self.rows(start, wanted))
            return
        seen: set[str] = set()
        position = 0
        for id, thread_id in self.rows(0, 2 * (start + wanted)):
            if thread_id in seen:
                continue
            seen.add(thread_id)
            if position >= start:
                yield id
            position += 1

    def total(self) -> int:
        return int(self._db.execute(*self._count).fetchone()[0])


# PostgreSQL: one tsvector per Email, every word prefixed by its field's code.
FIELD_CODES = {"subject": "s", "from": "f", "to": "t", "cc": "c", "bcc": "b", "body": "m"}


def capped(words: dict[str, list[str]]) -> dict[str, list[str]]:
    """The words of one message that are indexed, on either backend: field by field, in
    order, while the document stays under MAX_DOCUMENT octets counted as a PostgreSQL tsvector
    stores it (per word: a 4-octet entry, the word with its field code, 2 octets of count and
    2 per position, at most 256 positions). So any message that can be stored can be indexed;
    words (mail/search.py) are already cut to a length any backend takes."""
    fields = {name: words.get(name, [])[:MAX_WORDS] for name in FIELD_CODES}
    # At most what every word costs as a new one (spaces counted too): most mail is far
    # under the limit, and then every word is kept without counting them one by one.
    most = 8 + sum((4 + len(code) + 6) * len(fields[name]) + len(" ".join(fields[name]).encode())
                   for name, code in FIELD_CODES.items())  # fmt: skip
    if most <= MAX_DOCUMENT:
        return fields
    size = 8
    out: dict[str, list[str]] = {}
    for name, code in FIELD_CODES.items():
        positions: dict[str, int] = {}
        kept: list[str] = []
        for word in fields[name]:
            count = positions.get(word, 0)
            cost = 2 if count else 4 + len(code) + 1 + len(word.encode()) + 1 + 2 + 2
            if size + cost > MAX_DOCUMENT:
                break
            size += cost if count < 256 else 0
            positions[word] = count + 1
            kept.append(word)
        out[name] = kept
    return out


def tsvector(words: dict[str, list[str]]) -> str:
    """A PostgreSQL tsvector literal of already folded words by field (at most MAX_WORDS
    each): each word prefixed by its field's code, positions counted per field (phrases
    never cross fields)."""
    out = []
    for name, code in FIELD_CODES.items():
        positions: dict[str, list[int]] = {}
        for i, word in enumerate(words.get(name, []), 1):
            found = positions.setdefault(word, [])
            if len(found) < 256:  # what a tsvector keeps per word
                found.append(min(i, 16383))
        out += [f"'{code}:{w}':{','.join(map(str, p))}" for w, p in positions.items()]
    return " ".join(out)


def forget_words(db: Connection, seqs: str, params: Any) -> None:
    """Take messages' words out of SQLite's full-text index: those whose seq is in `seqs`
    (SQL: a placeholder, or a SELECT of seqs). The FTS5 table keeps no copy of the text (it
    is contentless: the copy was half the database), so a delete names the words it
    removes: those kept compressed in email_words when the message was indexed."""
    rows = db.execute(
        f"DELETE FROM email_words WHERE seq IN ({seqs}) RETURNING seq, words", params
    ).fetchall()
    for seq, words in rows:
        db.execute(
            f"INSERT INTO email_text (email_text, rowid, {TEXT_COLUMNS}) "
            "VALUES ('delete', ?, ?, ?, ?, ?, ?, ?)",
            [seq, *orjson.loads(zlib.decompress(words))],
        )


ACCOUNT_SEQS = "SELECT seq FROM emails WHERE account_id = ?"


class MessageIndex:
    """The index methods of a SQL transaction (mixed into SQLTransaction)."""

    db: Connection
    account_id: str
    dialect: str

    # -- writing -------------------------------------------------------------------------------

    def index_message(self, id: str, entry: MessageEntry) -> None:
        """Add a message's immutable entry and its words (once, when it is stored)."""
        columns = {
            "account_id": self.account_id,
            "id": id,
            "thread_id": entry.thread_id,
            "received_at": entry.received_at,
            "size": entry.size,
            "sent_at": entry.sent_at,
            "has_attachment": int(entry.has_attachment),
            **{key: entry.sort_text[key] for key in SORT_TEXT},
        }
        words = capped(entry.words)
        if self.dialect == "postgresql":
            columns["words"] = tsvector(words)
        names = ", ".join(columns)
        marks = ", ".join("?::tsvector" if n == "words" else "?" for n in columns)
        row = self.db.execute(
            f"INSERT INTO emails ({names}) VALUES ({marks}) RETURNING "
            + ("seq" if self.dialect == "sqlite" else "1"),
            list(columns.values()),
        ).fetchone()
        if self.dialect == "sqlite":
            text = [" ".join(words[f]) for f in FIELDS]
            self.db.execute(
                f"INSERT INTO email_text (rowid, {TEXT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [row[0], *text],
            )
            self.db.execute(
                "INSERT INTO email_words (seq, words) VALUES (?, ?)",
                (row[0], zlib.compress(orjson.dumps(text), 1)),
            )

    def index_flags(
        self, id: str, entry_thread: str, received_at: int, mailbox_ids: list[str],
        keywords: list[str], unread: bool,
    ) -> None:  # fmt: skip
        """Set a message's mailboxes and keywords (when stored, and whenever they change)."""
        self._drop_flags(id)
        for mailbox_id in mailbox_ids:
            self.db.execute(
                "INSERT INTO email_mailboxes (account_id, mailbox_id, email_id, received_at, "
                "thread_id, unread) VALUES (?, ?, ?, ?, ?, ?)",
                (self.account_id, mailbox_id, id, received_at, entry_thread, int(unread)),
            )
            self._count(mailbox_id, entry_thread, 1, int(unread))
        for keyword in keywords:
            self.db.execute(
                "INSERT INTO email_keywords (account_id, email_id, keyword) VALUES (?, ?, ?)",
                (self.account_id, id, keyword),
            )

    def _drop_flags(self, id: str) -> None:
        gone = self.db.execute(
            "DELETE FROM email_mailboxes WHERE account_id = ? AND email_id = ? "
            "RETURNING mailbox_id, thread_id, unread",
            (self.account_id, id),
        ).fetchall()
        for mailbox_id, thread_id, unread in gone:
            self._count(mailbox_id, thread_id, -1, -int(unread))
        self.db.execute(
            "DELETE FROM email_keywords WHERE account_id = ? AND email_id = ?",
            (self.account_id, id),
        )

    def _count(self, mailbox_id: str, thread_id: str, emails: int, unread: int) -> None:
        """A message of the thread came into the mailbox or left it (emails +1 or -1, unread
        as it was or is): keep the thread's and the mailbox's counts."""
        after = self.db.execute(
            "INSERT INTO mailbox_threads (account_id, mailbox_id, thread_id, emails, unread) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, mailbox_id, thread_id) DO UPDATE "
            "SET emails = mailbox_threads.emails + excluded.emails, "
            "unread = mailbox_threads.unread + excluded.unread RETURNING emails, unread",
            (self.account_id, mailbox_id, thread_id, emails, unread),
        ).fetchone()
        if after[0] == 0:
            self.db.execute(
                "DELETE FROM mailbox_threads WHERE account_id = ? AND mailbox_id = ? "
                "AND thread_id = ?",
                (self.account_id, mailbox_id, thread_id),
            )
        threads = (after[0] > 0) - (after[0] - emails > 0)
        unread_threads = (after[1] > 0) - (after[1] - unread > 0)
        self.db.execute(
            "INSERT INTO mailbox_counts (account_id, mailbox_id, emails, unread, threads, "
            "unread_threads) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, mailbox_id) "
            "DO UPDATE SET emails = mailbox_counts.emails + excluded.emails, "
            "unread = mailbox_counts.unread + excluded.unread, "
            "threads = mailbox_counts.threads + excluded.threads, "
            "unread_threads = mailbox_counts.unread_threads + excluded.unread_threads",
            (self.account_id, mailbox_id, emails, unread, threads, unread_threads),
        )

    def unindex_message(self, id: str) -> None:
        self._drop_flags(id)
        row = self.db.execute(
            "DELETE FROM emails WHERE account_id = ? AND id = ? RETURNING "
            + ("seq" if self.dialect == "sqlite" else "1"),
            (self.account_id, id),
        ).fetchone()
        if row is not None and self.dialect == "sqlite":
            forget_words(self.db, "?", (row[0],))

    def drop_message_index(self) -> None:
        """Remove every message of the account from the index (to rebuild it)."""
        if self.dialect == "sqlite":
            forget_words(self.db, ACCOUNT_SEQS, (self.account_id,))
        for table in INDEX_TABLES:
            self.db.execute(f"DELETE FROM {table} WHERE account_id = ?", (self.account_id,))

    def unindexed_messages(self) -> int:
        """How many of the account's messages (live Email records) the index lacks."""
        row = self.db.execute(
            "SELECT (SELECT count(*) FROM records WHERE account_id = ? AND type = 'Email' "
            "AND destroyed = 0) - (SELECT count(*) FROM emails WHERE account_id = ?)",
            (self.account_id, self.account_id),
        ).fetchone()
        return int(row[0])

    # -- reading ---------------------------------------------------------------------------------

    def mailbox_counts(self, mailbox_ids: list[str]) -> dict[str, tuple[int, int, int, int]]:
        """mailboxId → (emails, unread emails, threads, threads with an unread email in it)."""
        out = dict.fromkeys(mailbox_ids, (0, 0, 0, 0))
        for start in range(0, len(mailbox_ids), 500):
            chunk = mailbox_ids[start : start + 500]
            rows = self.db.execute(
                "SELECT mailbox_id, emails, unread, threads, unread_threads FROM mailbox_counts "
                f"WHERE account_id = ? AND mailbox_id IN ({','.join('?' * len(chunk))})",
                (self.account_id, *chunk),
            ).fetchall()
            for row in rows:
                out[row[0]] = (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
        return out

    def mailbox_messages(self, mailbox_id: str, limit: int | None = None) -> list[str]:
        rows = self.db.execute(
            "SELECT email_id FROM email_mailboxes WHERE account_id = ? AND mailbox_id = ? LIMIT ?",
            (self.account_id, mailbox_id, 2**62 if limit is None else limit),
        ).fetchall()
        return [r[0] for r in rows]

    def query_messages(self, query: MessageQuery) -> MessageResults:
        compiler = _Compiler(self.dialect, self.account_id)
        source, where, params = compiler.plan(query.condition)
        order, order_params = compiler.order(query.sort)
        ahead = f"WITH {', '.join(compiler.ahead)} " if compiler.ahead else ""
        params = compiler.ahead_params + params
        select = f"{ahead}SELECT e.id, e.thread_id FROM {source} WHERE {where} ORDER BY {order}"
        counted = "count(DISTINCT e.thread_id)" if query.collapse_threads else "count(*)"
        return MessageResults(
            self.db,
            (select, params + order_params),
            (f"{ahead}SELECT {counted} FROM {source} WHERE {where}", params),
            query.collapse_threads,
        )


KEYWORD = (
    "EXISTS (SELECT 1 FROM email_keywords k WHERE k.account_id = {e}.account_id "
    "AND k.email_id = {e}.id AND k.keyword = ?)"
)
THREAD_SOME = (
    "EXISTS (SELECT 1 FROM emails t JOIN email_keywords k ON k.account_id = t.account_id "
    "AND k.email_id = t.id WHERE t.account_id = e.account_id AND t.thread_id = e.thread_id "
    "AND k.keyword = ?)"
)
THREAD_ALL = (
    "NOT EXISTS (SELECT 1 FROM emails t WHERE t.account_id = e.account_id "
    "AND t.thread_id = e.thread_id AND NOT " + KEYWORD.format(e="t") + ")"
)
HEADERS = {
    "sqlite": (
        "EXISTS (SELECT 1 FROM records r, json_each(CAST(r.data AS TEXT), '$.summary.headers') h "
        "WHERE r.account_id = e.account_id AND r.type = 'Email' AND r.id = e.id "
        "AND lower(json_extract(h.value, '$.name')) = ? {value})",
        "AND instr(lower(json_extract(h.value, '$.value')), ?) > 0",
    ),
    "postgresql": (
        "EXISTS (SELECT 1 FROM records r, "
        "jsonb_array_elements(convert_from(r.data, 'UTF8')::jsonb -> 'summary' -> 'headers') h "
        "WHERE r.account_id = e.account_id AND r.type = 'Email' AND r.id = e.id "
        "AND lower(h ->> 'name') = ? {value})",
        "AND strpos(lower(h ->> 'value'), ?) > 0",
    ),
}
SIMPLE = {
    "received_before": "e.received_at < ?",
    "received_after": "e.received_at >= ?",
    "min_size": "e.size >= ?",
    "max_size": "e.size < ?",
    "keyword": KEYWORD.format(e="e"),
    "thread_some": THREAD_SOME,
    "thread_all": THREAD_ALL,
}
FTS_COLUMNS = {
    "subject": "subject", "from": "from_", "to": "to_", "cc": "cc", "bcc": "bcc", "body": "body",
}  # fmt: skip


def _conjuncts(condition: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The conditions that must all hold, with nested ANDs flattened."""
    if condition[0] != "and":
        return [condition]
    return [c for sub in condition[1] for c in _conjuncts(sub)]


class _Compiler:
    def __init__(self, dialect: str, account_id: str) -> None:
        self.dialect = dialect
        self.account_id = account_id
        self.mailbox_driven = False
        self.ahead: list[str] = []  # WITH queries (PostgreSQL word matches)
        self.ahead_params: list[Any] = []

    def plan(self, condition: tuple[Any, ...] | None) -> tuple[str, str, list[Any]]:
        """FROM, WHERE and parameters. A mailbox named at the top level (the common case:
        a mailbox listing) drives the query from its membership, whose index is in
        receivedAt order; else the account's Emails do, in the same order. Either way a
        page sorted by receivedAt reads only as far as its last match."""
        top = _conjuncts(condition) if condition is not None else []
        mailbox = next((c for c in top if c[0] == "mailbox"), None)
        params: list[Any] = []
        if mailbox is not None:
            top.remove(mailbox)
            self.mailbox_driven = True
            source = (
                "email_mailboxes m JOIN emails e ON e.account_id = m.account_id "
                "AND e.id = m.email_id"
            )
            where = ["m.account_id = ?", "m.mailbox_id = ?"]
            params += [self.account_id, mailbox[1]]
        else:
            source, where = "emails e", ["e.account_id = ?"]
            params.append(self.account_id)
        for c in top:
            where.append(self.condition(c, params))
        return source, " AND ".join(where), params

    def condition(self, c: tuple[Any, ...], params: list[Any]) -> str:
        kind = c[0]
        if kind in ("and", "or", "not"):
            parts = [self.condition(sub, params) for sub in c[1]]
            if kind == "not":
                return f"NOT ({' OR '.join(parts)})" if parts else "1 = 1"
            joiner = " AND " if kind == "and" else " OR "
            return f"({joiner.join(parts)})" if parts else ("1 = 1" if kind == "and" else "1 = 0")
        if kind in SIMPLE:
            params.append(c[1])
            return SIMPLE[kind]
        if kind == "mailbox":
            params.append(c[1])
            return (
                "EXISTS (SELECT 1 FROM email_mailboxes x WHERE x.account_id = e.account_id "
                "AND x.email_id = e.id AND x.mailbox_id = ?)"
            )
        if kind == "mailbox_other_than":
            params += c[1]
            others = f" AND x.mailbox_id NOT IN ({','.join('?' * len(c[1]))})" if c[1] else ""
            return (
                "EXISTS (SELECT 1 FROM email_mailboxes x WHERE x.account_id = e.account_id "
                f"AND x.email_id = e.id{others})"
            )
        if kind == "attachment":
            params.append(int(c[1]))
            return "e.has_attachment = ?"
        if kind == "header":
            template, value = HEADERS[self.dialect]
            params.append(c[1])
            if c[2] is not None:
                params.append(c[2])
            return template.format(value=value if c[2] is not None else "")
        if kind == "words":
            return self.words(c[1], c[2], params)
        raise ValueError(f"unknown condition {kind!r}")

    def words(self, field: str, terms: list[Term], params: list[Any]) -> str:
        if not terms:
            return "1 = 0"  # nothing searchable in the text: nothing matches
        if self.dialect == "postgresql":
            # The matches are listed once from the GIN index (a MATERIALIZED query ahead of
            # the main one) and probed as the Emails are read in sort order: evaluated row by
            # row instead, each Email's words would be read (20 ms instead of 6 for a word
            # in 1% of 100,000 messages). A tsquery literal: each word quoted (it holds only
            # letters and digits), in the field's code, or in any field's for "all".
            codes = [FIELD_CODES[field]] if field in FIELD_CODES else list(FIELD_CODES.values())
            parts = []
            for term in terms:
                last = len(term.words) - 1
                phrases = [
                    " <-> ".join(
                        f"'{code}:{w}'" + (":*" if term.prefix and i == last else "")
                        for i, w in enumerate(term.words)
                    )
                    for code in codes
                ]
                parts.append(" | ".join(f"({p})" for p in phrases))
            name = f"words{len(self.ahead)}"
            self.ahead.append(
                f"{name} AS MATERIALIZED (SELECT id FROM emails "
                "WHERE account_id = ? AND words @@ ?::tsquery)"
            )
            self.ahead_params += [self.account_id, " & ".join(f"({p})" for p in parts)]
            return f"e.id IN (SELECT id FROM {name})"
        # An FTS5 query: every term a quoted phrase of words (which hold only letters and
        # digits, so nothing in them is syntax), in the field's column.
        column = FTS_COLUMNS.get(field)
        scope = f"{column} : " if column else ""
        phrases = [f'{scope}"{" ".join(t.words)}"' + (" *" if t.prefix else "") for t in terms]
        params.append(" AND ".join(phrases))
        # The matches are listed once and probed as the Emails are read in sort order; "+"
        # keeps SQLite from looking each listed row up instead (slow for frequent words).
        return "+e.seq IN (SELECT rowid FROM email_text WHERE email_text MATCH ?)"

    def order(self, sort: list[tuple[str, bool, str | None]]) -> tuple[str, list[Any]]:
        keys, params = [], []
        for key, ascending, argument in sort:
            direction = "ASC" if ascending else "DESC"
            if key == "received_at" and self.mailbox_driven:
                expr = "m.received_at"
            elif key in ("keyword", "thread_some", "thread_all"):
                expr = SIMPLE[key]
                params.append(argument)
            else:
                expr = f"e.{key}"
            nulls = " NULLS FIRST" if ascending else " NULLS LAST"
            keys.append(f"{expr} {direction}{nulls if key == 'sent_at' else ''}")
        last = "ASC" if not sort or sort[-1][1] else "DESC"
        keys.append(f"{'m.email_id' if self.mailbox_driven else 'e.id'} {last}")
        return ", ".join(keys), params
