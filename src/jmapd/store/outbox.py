"""The outbound queue's rows (migration 0009): what an account sends, one row per route, kept
in the same transaction as the record that asked for it (an EmailSubmission, a vacation
reply), so a message is queued exactly when its request commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

COLUMNS = ("id", "submission_id", "route", "blob_id", "mail_from", "recipients", "send_at",
           "next_try", "expires", "attempts", "sending")  # fmt: skip


@dataclass
class Outgoing:
    """One message on its way along one route ("local", "smarthost" or "mx:DOMAIN").

    `mail_from` and each of `recipients` are Envelope Addresses ({"email", "parameters"}); a
    recipient leaves the row when it has its final answer. `sending` marks a row whose data
    was handed over (RFC 1047): after a crash it is not sent again."""

    id: str
    submission_id: str
    route: str
    blob_id: str
    mail_from: dict[str, Any]
    recipients: list[dict[str, Any]]
    send_at: float
    next_try: float
    expires: float
    attempts: int = 0
    sending: bool = False
    account_id: str = field(default="", compare=False)

    def values(self) -> tuple[Any, ...]:
        return (self.id, self.submission_id, self.route, self.blob_id,
                orjson.dumps(self.mail_from).decode(), orjson.dumps(self.recipients).decode(),
                self.send_at, self.next_try, self.expires, self.attempts,
                int(self.sending))  # fmt: skip


def outgoing_of(account_id: str, row: Any) -> Outgoing:
    values = dict(zip(COLUMNS, row, strict=True))
    values["mail_from"] = orjson.loads(values["mail_from"])
    values["recipients"] = orjson.loads(values["recipients"])
    values["sending"] = bool(values["sending"])
    return Outgoing(**values, account_id=account_id)


class OutboxRows:
    """The queue rows of the transaction's account (a mixin of SQLTransaction)."""

    db: Any
    account_id: str

    def enqueue(self, outgoing: Outgoing) -> None:
        self.db.execute(
            f"INSERT INTO outbox (account_id, {', '.join(COLUMNS)}) "
            f"VALUES (?, {', '.join('?' * len(COLUMNS))})",
            (self.account_id, *outgoing.values()),
        )

    def outgoing(self, submission_id: str | None = None, id: str | None = None) -> list[Outgoing]:
        """The account's queued rows: of one submission, or the one with `id`, or all."""
        where, params = "account_id = ?", [self.account_id]
        if submission_id is not None:
            where, params = where + " AND submission_id = ?", [*params, submission_id]
        if id is not None:
            where, params = where + " AND id = ?", [*params, id]
        rows = self.db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM outbox WHERE {where} ORDER BY id", params
        ).fetchall()
        return [outgoing_of(self.account_id, row) for row in rows]

    def save_outgoing(self, outgoing: Outgoing) -> None:
        """Write a row's progress back; a row with no recipient left is done and goes."""
        if not outgoing.recipients:
            self.remove_outgoing(outgoing.id)
            return
        self.db.execute(
            "UPDATE outbox SET recipients = ?, next_try = ?, attempts = ?, sending = ? "
            "WHERE account_id = ? AND id = ?",
            (orjson.dumps(outgoing.recipients).decode(), outgoing.next_try, outgoing.attempts,
             int(outgoing.sending), self.account_id, outgoing.id),
        )  # fmt: skip

    def remove_outgoing(self, id: str) -> None:
        self.db.execute("DELETE FROM outbox WHERE account_id = ? AND id = ?",
                        (self.account_id, id))  # fmt: skip


def due_outgoing(db: Any, now: float, limit: int) -> list[tuple[str, str]]:
    """(account id, row id) of rows due by `now`, the most overdue first (a row handed
    over keeps the next_try it was sent at: it is due, to be finished)."""
    rows = db.execute(
        "SELECT account_id, id FROM outbox WHERE next_try <= ? ORDER BY next_try LIMIT ?",
        (now, limit),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def next_due(db: Any) -> float | None:
    row = db.execute("SELECT min(next_try) FROM outbox").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def routes(txn: Any, recipients: list[dict[str, Any]], smarthost: bool) -> dict[str, list[Any]]:
    """Recipients by the way they go: "local" (an account of this server), "smarthost", or
    "mx:DOMAIN" (one connection per domain, with all of its recipients)."""
    out: dict[str, list[Any]] = {}
    for recipient in recipients:
        email = recipient["email"]
        if txn.account_for_address(email) is not None:
            route = "local"
        elif smarthost:
            route = "smarthost"
        else:
            route = "mx:" + email.rpartition("@")[2].lower()
        out.setdefault(route, []).append(recipient)
    return out


def queue_message(txn: Any, blob_id: str, size: int, submission_id: str,
                  mail_from: dict[str, Any], recipients: list[dict[str, Any]], release: float,
                  lifetime: float, smarthost: bool) -> None:  # fmt: skip
    """Queue a message (its blob stored already) in the transaction's account: one row per
    route, each holding a reference to the blob until it is done."""
    for route, group in sorted(routes(txn, recipients, smarthost).items()):
        txn.keep_blob(blob_id, size)
        txn.enqueue(Outgoing(txn.new_id(), submission_id, route, blob_id, mail_from, group,
                             release, release, release + lifetime))  # fmt: skip
