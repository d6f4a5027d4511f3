"""The ContactCard index: what ContactCard/query filters and sorts by (RFC 9610 §3.3), in
tables beside the records (migration 0010), written in the transaction that writes the card.

Text is matched by terms: each value folded (types/contacts/index.py) and kept from the start
of each of its words on, so a search token (or a quoted phrase) matches when it begins one of
them: `bloggs@exa` finds joe.bloggs@example.com, `van go` finds "Vincent van Gogh". Lookups
are ranges over (account, term), on SQLite and on PostgreSQL (column collation "C") alike.

Conditions (nested tuples):
    ("and" | "or" | "not", [condition, ...])       not: none of them
    ("book", id)    ("uid", s)    ("member", uid)    ("kind", s)
    ("created_before" | "created_after" | "updated_before" | "updated_after", ms)
    ("term", field | None, folded token)           None: any field
Sort keys: created, updated, {given,surname,surname2}_{u,a,n}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .mailindex import MessageResults

if TYPE_CHECKING:
    from .sql import Connection

CARD_INDEX_TABLES = ("cards", "card_books", "card_members", "card_terms")
CARD_SORTS = ("created", "updated",
              *(f"{n}_{c}" for n in ("given", "surname", "surname2") for c in "uan"))  # fmt: skip
TERM_END = "\U0010ffff"  # above every character, compared as UTF-8 octets or code points


@dataclass(frozen=True)
class CardEntry:
    uid: str
    kind: str | None
    created: int  # ms since the epoch, -1 if not set
    updated: int
    address_book_ids: list[str]
    members: list[str]
    sort_text: dict[str, str]  # CARD_SORTS (but created, updated) → key
    terms: dict[str, set[str]] = field(default_factory=dict)  # field → folded terms


@dataclass(frozen=True)
class CardQuery:
    condition: tuple[Any, ...] | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)


SIMPLE = {
    "uid": "c.uid = ?",
    "kind": "(c.kind IS NOT NULL AND c.kind = ?)",  # never NULL: NOT must see false
    "created_before": "(c.created >= 0 AND c.created < ?)",
    "created_after": "c.created >= ?",
    "updated_before": "(c.updated >= 0 AND c.updated < ?)",
    "updated_after": "c.updated >= ?",
    "book": "c.id IN (SELECT card_id FROM card_books WHERE account_id = ? AND book_id = ?)",
    "member": "c.id IN (SELECT card_id FROM card_members WHERE account_id = ? AND member = ?)",
}


class CardIndex:
    """The card index methods of a SQL transaction (mixed into SQLTransaction)."""

    db: Connection
    account_id: str
    dialect: str

    def index_card(self, id: str, entry: CardEntry) -> None:
        """Index a card as it now is (replacing what was indexed for it)."""
        self.unindex_card(id)
        self.db.execute(
            f"INSERT INTO cards (account_id, id, uid, kind, created, updated, "
            f"{', '.join(CARD_SORTS[2:])}) VALUES ({', '.join('?' * (6 + len(CARD_SORTS[2:])))})",
            [self.account_id, id, entry.uid, entry.kind, entry.created, entry.updated,
             *(entry.sort_text[k] for k in CARD_SORTS[2:])],
        )  # fmt: skip
        for book_id in entry.address_book_ids:
            self.db.execute(
                "INSERT INTO card_books (account_id, book_id, card_id) VALUES (?, ?, ?)",
                (self.account_id, book_id, id),
            )
        for member in set(entry.members):
            self.db.execute(
                "INSERT INTO card_members (account_id, member, card_id) VALUES (?, ?, ?)",
                (self.account_id, member, id),
            )
        rows = [(self.account_id, term, name, id)
                for name, terms in entry.terms.items() for term in terms]  # fmt: skip
        for start in range(0, len(rows), 200):
            chunk = rows[start : start + 200]
            self.db.execute(
                "INSERT INTO card_terms (account_id, term, field, card_id) VALUES "
                + ", ".join(["(?, ?, ?, ?)"] * len(chunk)),
                [v for row in chunk for v in row],
            )

    def unindex_card(self, id: str) -> None:
        for table, column in (("cards", "id"), ("card_books", "card_id"),
                              ("card_members", "card_id"), ("card_terms", "card_id")):  # fmt: skip
            self.db.execute(
                f"DELETE FROM {table} WHERE account_id = ? AND {column} = ?",
                (self.account_id, id),
            )

    def card_by_uid(self, uid: str) -> str | None:
        row = self.db.execute(
            "SELECT id FROM cards WHERE account_id = ? AND uid = ?", (self.account_id, uid)
        ).fetchone()
        return str(row[0]) if row else None

    def cards_in_book(self, book_id: str, limit: int | None = None) -> list[str]:
        rows = self.db.execute(
            "SELECT card_id FROM card_books WHERE account_id = ? AND book_id = ? LIMIT ?",
            (self.account_id, book_id, 2**62 if limit is None else limit),
        ).fetchall()
        return [r[0] for r in rows]

    def query_cards(self, query: CardQuery) -> MessageResults:
        params: list[Any] = [self.account_id]
        where = "c.account_id = ?"
        if query.condition is not None:
            where += " AND " + self._condition(query.condition, params)
        keys = [f"c.{key} {'ASC' if ascending else 'DESC'}" for key, ascending in query.sort]
        order = ", ".join([*keys, "c.id ASC"])
        return MessageResults(
            self.db,
            (f"SELECT c.id, c.id FROM cards c WHERE {where} ORDER BY {order}", params),
            (f"SELECT count(*) FROM cards c WHERE {where}", list(params)),
            False,
        )

    def _condition(self, c: tuple[Any, ...], params: list[Any]) -> str:
        kind = c[0]
        if kind in ("and", "or", "not"):
            parts = [self._condition(sub, params) for sub in c[1]]
            if kind == "not":
                return f"NOT ({' OR '.join(parts)})" if parts else "1 = 1"
            joiner = " AND " if kind == "and" else " OR "
            return f"({joiner.join(parts)})" if parts else ("1 = 1" if kind == "and" else "1 = 0")
        if kind in ("book", "member"):
            params += [self.account_id, c[1]]
            return SIMPLE[kind]
        if kind in SIMPLE:
            params.append(c[1])
            return SIMPLE[kind]
        if kind == "term":
            field_name, token = c[1], c[2]
            params += [self.account_id, token, token + TERM_END]
            scope = ""
            if field_name is not None:
                params.append(field_name)
                scope = " AND field = ?"
            return (
                "c.id IN (SELECT card_id FROM card_terms WHERE account_id = ? "
                f"AND term >= ? AND term < ?{scope})"
            )
        raise ValueError(f"unknown condition {kind!r}")
