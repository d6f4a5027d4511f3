"""What the SQL backends share: the records/changes/blobs transaction and the directory, written
once in the SQL both SQLite and PostgreSQL speak. A backend supplies connections, transactions
and its placeholder style."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from typing import Any, Protocol

import orjson

from .base import Access, Account, Change, Token
from .cardindex import CARD_INDEX_TABLES, CardIndex
from .mailindex import ACCOUNT_SEQS, INDEX_TABLES, MessageIndex, forget_words
from .outbox import OutboxRows, due_outgoing, next_due

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
NO_LIMIT = 2**62
# Every table keyed by account, in the order an account's rows are removed.
TABLES = ("records", "type_states", "blobs", *INDEX_TABLES, *CARD_INDEX_TABLES, "tokens",
          "access", "aliases", "outbox", "accounts")  # fmt: skip


def random_id(prefix: str, length: int = 11) -> str:
    """`length` characters of ID_ALPHABET, uniformly random, from one draw of the system's
    randomness (a draw per character was a system call each, 22 for a delivered message)."""
    n = secrets.randbelow(len(ID_ALPHABET) ** length)
    chars = []
    for _ in range(length):
        n, digit = divmod(n, len(ID_ALPHABET))
        chars.append(ID_ALPHABET[digit])
    return prefix + "".join(chars)


def migrations(dialect: str) -> list[tuple[int, str]]:
    """The versioned migrations of a dialect, as (version, sql) in order: those written in SQL
    both dialects speak (migrations/common) and the dialect's own."""
    found: dict[int, str] = {}
    for name in ("common", dialect):
        for entry in (resources.files("jmapd.store") / "migrations" / name).iterdir():
            if entry.name.endswith(".sql"):
                version = int(entry.name.split("_", 1)[0])
                if version in found:
                    raise ValueError(f"two migrations numbered {version}")
                found[version] = entry.read_text()
    return sorted(found.items())


def statements(sql: str) -> list[str]:
    return [s for s in sql.split(";\n") if s.strip()]


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    @property
    def rowcount(self) -> int: ...


class Connection(Protocol):
    """A connection in `?` placeholder style (the PostgreSQL backend adapts)."""

    def execute(self, sql: str, params: Any = ()) -> Cursor: ...


def marks(values: list[Any]) -> str:
    return ",".join("?" * len(values))


def queue_orphans(db: Connection, blob_ids: list[str]) -> None:
    """Queue for housekeeping the blobs no account references any more (the queue only
    names candidates: their files are removed only when still unreferenced then)."""
    for start in range(0, len(blob_ids), 500):
        chunk = blob_ids[start : start + 500]
        used = {
            row[0]
            for row in db.execute(
                f"SELECT DISTINCT blob_id FROM blobs WHERE blob_id IN ({marks(chunk)})", chunk
            ).fetchall()
        }
        for blob_id in set(chunk) - used:
            db.execute(
                "INSERT INTO blob_orphans (blob_id, since) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (blob_id, time.time()),
            )


def address_owner(db: Connection, address: str, exact: bool = False) -> str | None:
    """The account mail for an address goes to: the account of that name, or with that
    alias; else (unless `exact`) the same without a +tag in its local part; else the
    domain's catch-all. Case-insensitive."""
    address = address.lower()
    local, _, domain = address.rpartition("@")
    candidates = [address]
    if not exact:
        if "+" in local:
            candidates.append(f"{local.partition('+')[0]}@{domain}")
        candidates.append(f"@{domain}")
    for candidate in candidates:
        row = db.execute("SELECT account_id FROM accounts WHERE lower(name) = ? UNION ALL "
                         "SELECT account_id FROM aliases WHERE address = ?",
                         (candidate, candidate)).fetchone()  # fmt: skip
        if row:
            return str(row[0])
    return None


class SQLTransaction(MessageIndex, CardIndex, OutboxRows):
    def __init__(self, db: Connection, account_id: str, dialect: str) -> None:
        self.db = db
        self.account_id = account_id
        self.dialect = dialect
        self._modseq: int | None = None
        self._changed: dict[str, int] = {}
        self._savepoints = 0

    @property
    def changed(self) -> dict[str, int]:
        return dict(self._changed)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # The modseq and the states written are remembered in Python too: undone with the
        # savepoint, or the next write would reuse a modseq the database no longer holds.
        modseq, changed = self._modseq, dict(self._changed)
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.db.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.db.execute(f"RELEASE SAVEPOINT {name}")
            self._modseq, self._changed = modseq, changed
            raise
        self.db.execute(f"RELEASE SAVEPOINT {name}")

    def _write_modseq(self, type: str) -> int:
        if self._modseq is None:
            row = self.db.execute(
                "UPDATE accounts SET modseq = modseq + 1 WHERE account_id = ? RETURNING modseq",
                (self.account_id,),
            ).fetchone()
            self._modseq = int(row[0])
        if type not in self._changed and not type.startswith("_"):
            self.db.execute(
                "INSERT INTO type_states (account_id, type, state) VALUES (?, ?, ?) "
                "ON CONFLICT (account_id, type) DO UPDATE SET state = excluded.state",
                (self.account_id, type, self._modseq),
            )
            self._changed[type] = self._modseq
        return self._modseq

    def _type_state(self, column: str, type: str) -> int:
        row = self.db.execute(
            f"SELECT {column} FROM type_states WHERE account_id = ? AND type = ?",
            (self.account_id, type),
        ).fetchone()
        return int(row[0]) if row else 0

    def state(self, type: str) -> int:
        return self._type_state("state", type)

    def floor(self, type: str) -> int:
        return self._type_state("floor", type)

    def get(self, type: str, ids: list[str] | None) -> dict[str, dict[str, Any]]:
        query = "SELECT id, data FROM records WHERE account_id = ? AND type = ? AND destroyed = 0"
        if ids is None:
            rows = self.db.execute(query, (self.account_id, type)).fetchall()
        else:
            rows = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows += self.db.execute(
                    f"{query} AND id IN ({marks(chunk)})", (self.account_id, type, *chunk)
                ).fetchall()
        return {row[0]: orjson.loads(row[1]) for row in rows}

    def changes(
        self, type: str, since: int, limit: int | None = None, after: str | None = None
    ) -> list[Change]:
        # Ids in code point order, as Python compares them (/changes pages by id).
        by_id = 'id COLLATE "C"' if self.dialect == "postgresql" else "id"
        where, params = "modseq > ?", [self.account_id, type, since]
        if after is not None:
            where = f"(modseq > ? OR (modseq = ? AND {by_id} > ?))"
            params += [since, after]
        rows = self.db.execute(
            "SELECT id, modseq, created_modseq, props_modseq, destroyed FROM records "
            f"WHERE account_id = ? AND type = ? AND {where} ORDER BY modseq, {by_id} LIMIT ?",
            [*params, NO_LIMIT if limit is None else limit],
        ).fetchall()
        return [Change(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def put(self, type: str, id: str, data: dict[str, Any]) -> None:
        modseq = self._write_modseq(type)
        self.db.execute(
            "INSERT INTO records (account_id, type, id, modseq, created_modseq, props_modseq, "
            "data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, type, id) DO UPDATE SET "
            "modseq = excluded.modseq, props_modseq = excluded.props_modseq, data = excluded.data, "
            # An id made again after it was destroyed is a new record.
            "created_modseq = CASE WHEN records.destroyed = 0 THEN records.created_modseq "
            "ELSE excluded.created_modseq END, destroyed = 0, destroyed_at = NULL",
            (self.account_id, type, id, modseq, modseq, modseq, orjson.dumps(data)),
        )

    def bump(self, type: str, id: str) -> None:
        modseq = self._write_modseq(type)
        self.db.execute(
            "UPDATE records SET modseq = ? WHERE account_id = ? AND type = ? AND id = ? "
            "AND destroyed = 0",
            (modseq, self.account_id, type, id),
        )

    def destroy(self, type: str, id: str) -> None:
        if type.startswith("_"):  # internal: no /changes to remember it for
            self.db.execute(
                "DELETE FROM records WHERE account_id = ? AND type = ? AND id = ?",
                (self.account_id, type, id),
            )
            return
        modseq = self._write_modseq(type)
        self.db.execute(
            "UPDATE records SET destroyed = 1, destroyed_at = ?, modseq = ?, data = NULL "
            "WHERE account_id = ? AND type = ? AND id = ?",
            (time.time(), modseq, self.account_id, type, id),
        )

    def touch(self, type: str) -> None:
        self._write_modseq(type)

    def new_id(self) -> str:
        return random_id("x")

    def account_for_address(self, address: str) -> str | None:
        """The account that takes mail for an address (SQLStore.account_for_address)."""
        return address_owner(self.db, address)

    def blob_size(self, blob_id: str, user_id: str) -> int | None:
        row = self.db.execute(
            "SELECT size FROM blobs WHERE account_id = ? AND blob_id = ? "
            "AND (uploader = '' OR (uploader = ? AND expires > ?)) LIMIT 1",
            (self.account_id, blob_id, user_id, time.time()),
        ).fetchone()
        return int(row[0]) if row else None

    def keep_blob(self, blob_id: str, size: int) -> None:
        self.db.execute(
            "INSERT INTO blobs (account_id, blob_id, uploader, size, expires, refs) "
            "VALUES (?, ?, '', ?, NULL, 1) ON CONFLICT (account_id, blob_id, uploader) "
            "DO UPDATE SET refs = blobs.refs + 1",
            (self.account_id, blob_id, size),
        )
        # The upload is used: it does not outlive the record that took it.
        self.db.execute(
            "DELETE FROM blobs WHERE account_id = ? AND blob_id = ? AND uploader <> ''",
            (self.account_id, blob_id),
        )

    def release_blob(self, blob_id: str) -> None:
        row = self.db.execute(
            "UPDATE blobs SET refs = refs - 1 WHERE account_id = ? AND blob_id = ? "
            "AND uploader = '' RETURNING refs",
            (self.account_id, blob_id),
        ).fetchone()
        if row is None or row[0] > 0:
            return
        self.db.execute(
            "DELETE FROM blobs WHERE account_id = ? AND blob_id = ? AND uploader = ''",
            (self.account_id, blob_id),
        )
        queue_orphans(self.db, [blob_id])

    def add_upload(self, blob_id: str, size: int, uploader: str, expires: float) -> None:
        self.db.execute(
            "INSERT INTO blobs (account_id, blob_id, uploader, size, expires) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, blob_id, uploader) "
            "DO UPDATE SET expires = GREATEST(blobs.expires, excluded.expires)",
            (self.account_id, blob_id, uploader, size, expires),
        )


class SQLStore:
    """Records, directory and blob references over a backend's connections."""

    dialect = ""

    def _transaction(self, write: bool) -> AbstractContextManager[Connection]:
        """A transaction: writes are serialised per account by the backend."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the backend's connections."""

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Whether this process holds the named lock among all that share the store, for the
        block (one worker or node runs housekeeping; the others skip it)."""
        yield True

    def snapshot(self) -> AbstractContextManager[Connection]:
        """A read transaction over every account at once (backups)."""
        return self._transaction(False)

    def whole(self) -> AbstractContextManager[Connection]:
        """A write transaction over every account at once (restores)."""
        return self._transaction(True)

    def _lock_account(self, db: Connection, account_id: str) -> None:
        """Serialise writers of one account before anything is read (ifInState)."""

    @contextmanager
    def read(self, account_id: str) -> Iterator[SQLTransaction]:
        with self._transaction(False) as db:
            yield SQLTransaction(db, account_id, self.dialect)

    @contextmanager
    def write(self, account_id: str) -> Iterator[SQLTransaction]:
        with self._transaction(True) as db:
            self._lock_account(db, account_id)
            txn = SQLTransaction(db, account_id, self.dialect)
            yield txn
            if txn.changed:
                self._committing(db, {account_id: txn.changed})

    @contextmanager
    def write_accounts(self, account_ids: list[str]) -> Iterator[dict[str, SQLTransaction]]:
        """One write transaction over several accounts (a local delivery of what one account
        sends, and the sender's record of it: both or neither). Accounts are locked in
        their sorted order, so two such transactions cannot wait for each other."""
        with self._transaction(True) as db:
            txns = {}
            for account_id in sorted(set(account_ids)):
                self._lock_account(db, account_id)
                txns[account_id] = SQLTransaction(db, account_id, self.dialect)
            yield txns
            changed = {a: t.changed for a, t in txns.items() if t.changed}
            if changed:
                self._committing(db, changed)

    def due_outgoing(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        """(account id, row id) of the outbound queue's rows due by `now`."""
        with self._transaction(False) as db:
            return due_outgoing(db, now, limit)

    def next_outgoing(self) -> float | None:
        """When the outbound queue's next row is due (None: the queue is empty)."""
        with self._transaction(False) as db:
            return next_due(db)

    def _committing(self, db: Connection, changed: dict[str, dict[str, int]]) -> None:
        """Called inside a write transaction that changed states, just before commit."""

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version."""
        with self._transaction(True) as db:
            self._lock_migrations(db)
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
            for version, sql in migrations(self.dialect):
                if version > current:
                    for statement in statements(sql):
                        db.execute(statement)
                    db.execute("INSERT INTO schema_version VALUES (?)", (version,))
                    current = version
        return int(current)

    def _lock_migrations(self, db: Connection) -> None:
        """Keep two processes from migrating at once."""

    # -- directory ------------------------------------------------------------------------------

    def _one(self, sql: str, params: Any) -> Any:
        with self._transaction(False) as db:
            return db.execute(sql, params).fetchone()

    def _change(self, sql: str, params: Any) -> int:
        with self._transaction(True) as db:
            return db.execute(sql, params).rowcount

    def _account(self, where: str, value: str) -> Account | None:
        row = self._one(
            f"SELECT account_id, name, password_hash FROM accounts WHERE {where} = ?", (value,)
        )
        return Account(*row) if row else None

    def create_account(self, name: str, password_hash: str) -> Account:
        account = Account(random_id("a", 9), name, password_hash)
        self._change(
            "INSERT INTO accounts (account_id, name, password_hash, created) VALUES (?,?,?,?)",
            (account.id, name, password_hash, time.time()),
        )
        return account

    def account_by_name(self, name: str) -> Account | None:
        return self._account("name", name)

    def account_by_id(self, account_id: str) -> Account | None:
        return self._account("account_id", account_id)

    def list_accounts(self) -> list[Account]:
        with self._transaction(False) as db:
            rows = db.execute(
                "SELECT account_id, name, password_hash FROM accounts ORDER BY name"
            ).fetchall()
        return [Account(*row) for row in rows]

    def remove_account(self, account_id: str) -> list[str]:
        """Every row of the account goes; its blobs no other account uses are queued for
        removal (blob_orphans). Returns the account's blob ids."""
        with self._transaction(True) as db:
            blob_ids = [
                row[0]
                for row in db.execute(
                    "SELECT DISTINCT blob_id FROM blobs WHERE account_id = ?", (account_id,)
                ).fetchall()
            ]
            if self.dialect == "sqlite":
                forget_words(db, ACCOUNT_SEQS, (account_id,))
            for table in TABLES:
                db.execute(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))
            db.execute("DELETE FROM access WHERE user_id = ?", (account_id,))
            queue_orphans(db, blob_ids)
        return blob_ids

    def set_password(self, account_id: str, password_hash: str) -> None:
        self._change(
            "UPDATE accounts SET password_hash = ? WHERE account_id = ?",
            (password_hash, account_id),
        )

    def grant(self, account_id: str, user_id: str, read_only: bool) -> None:
        self._change(
            "INSERT INTO access (account_id, user_id, read_only) VALUES (?, ?, ?) "
            "ON CONFLICT (account_id, user_id) DO UPDATE SET read_only = excluded.read_only",
            (account_id, user_id, int(read_only)),
        )

    def access(self, user_id: str) -> list[Access]:
        with self._transaction(False) as db:
            own = db.execute(
                "SELECT name FROM accounts WHERE account_id = ?", (user_id,)
            ).fetchone()
            if own is None:
                return []
            rows = db.execute(
                "SELECT a.account_id, a.name, g.read_only FROM access g JOIN accounts a "
                "ON a.account_id = g.account_id WHERE g.user_id = ? ORDER BY a.name",
                (user_id,),
            ).fetchall()
        return [Access(user_id, own[0], True, False)] + [
            Access(r[0], r[1], False, bool(r[2])) for r in rows
        ]

    def create_token(self, token_hash: str, account_id: str, name: str, read_only: bool) -> None:
        if self._one("SELECT 1 FROM tokens WHERE account_id = ? AND name = ?", (account_id, name)):
            raise KeyError(f"token {name} exists")
        self._change(
            "INSERT INTO tokens (token_hash, account_id, name, read_only, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_hash, account_id, name, int(read_only), time.time()),
        )

    def token(self, token_hash: str) -> Token | None:
        row = self._one(
            "SELECT account_id, name, read_only FROM tokens WHERE token_hash = ?", (token_hash,)
        )
        return Token(row[0], row[1], bool(row[2])) if row else None

    def list_tokens(self, account_id: str) -> list[tuple[str, bool, float]]:
        """(name, read-only, created) of each of the account's tokens, by name."""
        with self._transaction(False) as db:
            rows = db.execute(
                "SELECT name, read_only, created FROM tokens WHERE account_id = ? ORDER BY name",
                (account_id,),
            ).fetchall()
        return [(r[0], bool(r[1]), float(r[2])) for r in rows]

    def revoke_token(self, account_id: str, name: str) -> bool:
        return (
            self._change("DELETE FROM tokens WHERE account_id = ? AND name = ?", (account_id, name))
            > 0
        )

    # -- addresses (mail delivery) ----------------------------------------------------------------

    def add_alias(self, account_id: str, address: str) -> None:
        """Deliver mail for `address` (or, written "@domain", for every address of the
        domain no account has) to the account; KeyError if it is another's."""
        address = address.lower()
        if self.account_for_address(address, exact=True) not in (None, account_id):
            raise KeyError(address)
        self._change("INSERT INTO aliases (account_id, address) VALUES (?, ?) "
                     "ON CONFLICT DO NOTHING", (account_id, address))  # fmt: skip

    def remove_alias(self, account_id: str, address: str) -> bool:
        return self._change("DELETE FROM aliases WHERE account_id = ? AND address = ?",
                            (account_id, address.lower())) > 0  # fmt: skip

    def aliases(self, account_id: str) -> list[str]:
        with self._transaction(False) as db:
            rows = db.execute("SELECT address FROM aliases WHERE account_id = ? ORDER BY address",
                              (account_id,)).fetchall()  # fmt: skip
        return [r[0] for r in rows]

    def account_for_address(self, address: str, exact: bool = False) -> str | None:
        with self._transaction(False) as db:
            return address_owner(db, address, exact)

    def users_of(self, account_id: str) -> list[str]:
        """The users who may use an account: its owner, then those granted it."""
        with self._transaction(False) as db:
            rows = db.execute("SELECT user_id FROM access WHERE account_id = ? ORDER BY user_id",
                              (account_id,)).fetchall()  # fmt: skip
        return [account_id, *(r[0] for r in rows)]

    def records_everywhere(self, type: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(account id, id, record) of every live record of a type, in every account
        (housekeeping of PushSubscriptions)."""
        with self._transaction(False) as db:
            rows = db.execute("SELECT account_id, id, data FROM records WHERE type = ? AND "
                              "destroyed = 0", (type,)).fetchall()  # fmt: skip
        return [(r[0], r[1], orjson.loads(r[2])) for r in rows]

    def server_key(self, name: str, make: Callable[[], str]) -> str:
        """The named key shared by every process of this store, made by the first to ask."""
        with self._transaction(True) as db:
            db.execute("INSERT INTO server_keys (name, value) VALUES (?, ?) "
                       "ON CONFLICT (name) DO NOTHING", (name, make()))  # fmt: skip
            return str(db.execute("SELECT value FROM server_keys WHERE name = ?", (name,))
                       .fetchone()[0])  # fmt: skip

    def states(self, account_ids: list[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {a: {} for a in account_ids}
        with self._transaction(False) as db:
            for start in range(0, len(account_ids), 500):
                chunk = account_ids[start : start + 500]
                rows = db.execute(
                    "SELECT account_id, type, state FROM type_states "
                    f"WHERE account_id IN ({marks(chunk)})",
                    chunk,
                ).fetchall()
                for account_id, type, state in rows:
                    out[account_id][type] = int(state)
        return out

    # -- housekeeping ---------------------------------------------------------------------------

    def expire_blobs(self, now: float) -> None:
        with self._transaction(True) as db:
            expired = db.execute(
                "DELETE FROM blobs WHERE expires IS NOT NULL AND expires <= ? RETURNING blob_id",
                (now,),
            ).fetchall()
            queue_orphans(db, sorted({r[0] for r in expired}))

    def orphaned_blobs(self, limit: int = 1000) -> list[str]:
        with self._transaction(False) as db:
            rows = db.execute(
                "SELECT blob_id FROM blob_orphans ORDER BY since LIMIT ?", (limit,)
            ).fetchall()
        return [r[0] for r in rows]

    def forget_orphans(self, blob_ids: list[str]) -> None:
        with self._transaction(True) as db:
            for start in range(0, len(blob_ids), 500):
                chunk = blob_ids[start : start + 500]
                db.execute(f"DELETE FROM blob_orphans WHERE blob_id IN ({marks(chunk)})", chunk)

    def referenced_blobs(self, blob_ids: list[str]) -> set[str]:
        out: set[str] = set()
        with self._transaction(False) as db:
            for start in range(0, len(blob_ids), 500):
                chunk = blob_ids[start : start + 500]
                rows = db.execute(
                    f"SELECT DISTINCT blob_id FROM blobs WHERE blob_id IN ({marks(chunk)})", chunk
                ).fetchall()
                out.update(r[0] for r in rows)
        return out

    def purge_tombstones(self, before: float) -> int:
        """Forget records destroyed before `before`, raising each type's floor past them."""
        with self._transaction(True) as db:
            rows = db.execute(
                "DELETE FROM records WHERE destroyed = 1 AND destroyed_at < ? "
                "RETURNING account_id, type, modseq",
                (before,),
            ).fetchall()
            floors: dict[tuple[str, str], int] = {}
            for account_id, type, modseq in rows:
                floors[(account_id, type)] = max(floors.get((account_id, type), 0), modseq)
            for (account_id, type), floor in floors.items():
                db.execute(
                    "UPDATE type_states SET floor = GREATEST(floor, ?) "
                    "WHERE account_id = ? AND type = ?",
                    (floor, account_id, type),
                )
        return len(rows)
