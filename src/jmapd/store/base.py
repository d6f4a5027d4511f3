"""The storage interfaces, split by role. Every backend passes the same test suite.

Nothing here knows JMAP method names: a record is (type name, id, JSON object) with modseqs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .cardindex import CardEntry, CardQuery
    from .mailindex import MessageEntry, MessageQuery, MessageResults
    from .outbox import Outgoing


class Busy(Exception):
    """The database stayed locked by other writers longer than the configured wait: the
    caller may try again later (a method answers serverUnavailable, HTTP 503)."""


@dataclass(frozen=True)
class Change:
    """One record's last change: its modseq, the modseq it was created at, the modseq its
    stored properties last changed at (older when only counts shown with it changed since),
    and whether it is destroyed."""

    id: str
    modseq: int
    created_modseq: int
    props_modseq: int
    destroyed: bool


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    password_hash: str


@dataclass(frozen=True)
class Access:
    """What one user may do in one account: owners have it implicitly, others by a grant."""

    account_id: str
    name: str
    is_personal: bool
    is_read_only: bool


@dataclass(frozen=True)
class Token:
    account_id: str
    name: str
    read_only: bool


class Transaction(Protocol):
    """One account's records inside one database transaction.

    A type whose name starts with "_" is internal (an index kept as records, e.g. threading
    keys): it has no state and is never announced.

    Reads see one consistent snapshot. The first write allocates the transaction's modseq: the
    account's counter plus one, taken atomically so concurrent writers (threads, processes or
    nodes) are serialised per account. Nothing is visible to others until commit.
    """

    account_id: str

    def state(self, type: str) -> int:
        """The type's state: the modseq of its newest change in this account (0 if none)."""

    def floor(self, type: str) -> int:
        """The oldest state /changes can still answer from (tombstones before it are gone)."""

    def get(self, type: str, ids: list[str] | None) -> dict[str, dict[str, Any]]:
        """Live records by id (all of the type when ids is None); unknown ids are absent."""

    def changes(
        self, type: str, since: int, limit: int | None = None, after: str | None = None
    ) -> list[Change]:
        """Records of the type changed after `since` (or, with `after`, at `since` with a
        greater id), in (modseq, id) order, at most `limit`."""

    def put(self, type: str, id: str, data: dict[str, Any]) -> None:
        """Create or replace a record, stamping it with this transaction's modseq."""

    def destroy(self, type: str, id: str) -> None:
        """Destroy a record, leaving a tombstone with this transaction's modseq (an internal
        record is just removed)."""

    def bump(self, type: str, id: str) -> None:
        """Mark a record changed though its stored properties are not: what it shows from
        other records changed (e.g. a mailbox's counts)."""

    def touch(self, type: str) -> None:
        """A new state for a type that has no records of its own (EmailDelivery: new mail
        arrived, RFC 8621 §1.5)."""

    def account_for_address(self, address: str) -> str | None:
        """The account of this store that takes mail for `address`, if any."""
        ...

    def new_id(self) -> str:
        """A fresh record id, unique in the account."""

    # The outbound queue (store/outbox.py), in the same transaction as what asked to send.
    def enqueue(self, outgoing: Outgoing) -> None: ...
    def outgoing(self, submission_id: str | None = None, id: str | None = None) -> list[Outgoing]:
        """The account's queued rows: of one submission, or the one with `id`, or all."""

    def save_outgoing(self, outgoing: Outgoing) -> None: ...
    def remove_outgoing(self, id: str) -> None: ...

    def blob_size(self, blob_id: str, user_id: str) -> int | None:
        """The size of a blob the user may read in this account, or None: blobs a record uses
        are visible to all who may use the account; fresh uploads only to their uploader."""

    def add_upload(self, blob_id: str, size: int, uploader: str, expires: float) -> None:
        """Reference a stored blob from this account as the user's upload, until `expires`."""

    def keep_blob(self, blob_id: str, size: int) -> None:
        """A record of this account uses a stored blob: one more reference (and the upload it
        came from, if any, is used up)."""

    def release_blob(self, blob_id: str) -> None:
        """A record no longer uses the blob: one reference less. With none left the account
        can no longer read it, and if no account references it, it is queued for its file
        to be removed by housekeeping."""

    @property
    def changed(self) -> dict[str, int]:
        """Types written by this transaction and their new states (for push after commit)."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A block whose writes are all undone if it raises (the exception goes on), while the
        transaction's other writes stand: one record of a /set on its own."""

    # The message index (store/mailindex.py): mail search and mailbox counts in the database.

    def index_message(self, id: str, entry: MessageEntry) -> None:
        """Index a stored message's immutable facts and words."""

    def index_flags(
        self, id: str, entry_thread: str, received_at: int, mailbox_ids: list[str],
        keywords: list[str], unread: bool,
    ) -> None:  # fmt: skip
        """Set an indexed message's mailboxes and keywords."""

    def unindex_message(self, id: str) -> None: ...
    def drop_message_index(self) -> None: ...
    def unindexed_messages(self) -> int: ...

    def mailbox_counts(self, mailbox_ids: list[str]) -> dict[str, tuple[int, int, int, int]]:
        """mailboxId → (messages, unread messages, threads, threads with an unread message)."""

    def mailbox_messages(self, mailbox_id: str, limit: int | None = None) -> list[str]: ...
    def query_messages(self, query: MessageQuery) -> MessageResults: ...

    # The ContactCard index (store/cardindex.py).

    def index_card(self, id: str, entry: CardEntry) -> None:
        """Index a card as it now is, replacing what was indexed for it."""

    def unindex_card(self, id: str) -> None: ...
    def card_by_uid(self, uid: str) -> str | None:
        """The id of the account's card with this uid."""

    def cards_in_book(self, book_id: str, limit: int | None = None) -> list[str]: ...
    def query_cards(self, query: CardQuery) -> MessageResults: ...


class Directory(Protocol):
    """Accounts, access grants and API tokens."""

    def create_account(self, name: str, password_hash: str) -> Account: ...
    def account_by_name(self, name: str) -> Account | None: ...
    def account_by_id(self, account_id: str) -> Account | None: ...
    def aliases(self, account_id: str) -> list[str]:
        """The addresses beside its name whose mail the account takes ("@domain": all of a
        domain's no account has)."""
        ...

    def list_accounts(self) -> list[Account]: ...
    def remove_account(self, account_id: str) -> list[str]: ...
    def set_password(self, account_id: str, password_hash: str) -> None: ...
    def grant(self, account_id: str, user_id: str, read_only: bool) -> None: ...
    def access(self, user_id: str) -> list[Access]:
        """Every account the user may use: their own first, then grants."""
        ...

    def create_token(
        self, token_hash: str, account_id: str, name: str, read_only: bool
    ) -> None: ...
    def token(self, token_hash: str) -> Token | None: ...
    def revoke_token(self, account_id: str, name: str) -> bool: ...
    def server_key(self, name: str, make: Callable[[], str]) -> str:
        """The named key shared by every process of this store, made by the first to ask."""
        ...

    def users_of(self, account_id: str) -> list[str]:
        """The users who may use an account: its owner, then those granted it."""
        ...

    def records_everywhere(self, type: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(account id, id, record) of every live record of a type, in every account."""
        ...


class Store(Directory, Protocol):
    """The records of every account, plus the directory."""

    def read(self, account_id: str) -> AbstractContextManager[Transaction]: ...
    def write(self, account_id: str) -> AbstractContextManager[Transaction]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        ...

    def states(self, account_ids: list[str]) -> dict[str, dict[str, int]]:
        """The current state of every type in each account (for push across processes)."""
        ...

    def expire_blobs(self, now: float) -> None:
        """Drop expired uploads, queueing blobs no account references any more."""
        ...

    def orphaned_blobs(self, limit: int = 1000) -> list[str]:
        """Blobs queued for their files to be removed (they were unreferenced then)."""
        ...

    def forget_orphans(self, blob_ids: list[str]) -> None: ...
    def referenced_blobs(self, blob_ids: list[str]) -> set[str]:
        """Those of the blobs some account references (a record, or an upload)."""
        ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    """Content-addressed bytes: the blob id is derived from a SHA-256 of the content. A blob
    is durable once put returns. Which blobs exist is the store's business; which are used
    is the records' (blob references): housekeeping removes a blob only through
    remove_unused, which asks `referenced` last and never removes a young one."""

    def put(self, data: bytes) -> str: ...
    def ensure(self, blob_id: str, data: bytes) -> None:
        """Put the bytes again if they are gone: called after the commit that references
        them, should their removal have raced the reference."""
        ...

    def read(self, blob_id: str) -> bytes | None: ...
    def read_many(self, blob_ids: list[str]) -> dict[str, bytes]:
        """The bytes of those of the blobs that exist, in one round trip where the store
        can (the 50 messages of an Email/get with bodies, of a SearchSnippet/get)."""
        ...

    def exists(self, blob_id: str) -> bool: ...
    def path(self, blob_id: str) -> str | None:
        """A file holding the blob, when the store keeps files (served with Range support
        by the HTTP server), else None."""
        ...

    def remove_unused(self, blob_id: str, referenced: Callable[[], bool], min_age: float) -> str:
        """ "removed", "referenced", "young" (written in the last min_age seconds) or
        "missing"."""
        ...

    def blob_ids(self, stale_before: float) -> Iterator[tuple[str, float]]:
        """Every blob with the time it was last written (for sweeps)."""
        ...
