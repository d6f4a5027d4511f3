"""The capability and method registry, and the per-request context handlers receive.

A method is declared once with its capability and flags; the dispatcher does account lookup,
`using` checks and access checks for every method in one place (protocol/request.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..store.base import Access, BlobStore, Store, Transaction
from .errors import MethodError

CORE = "urn:ietf:params:jmap:core"

Response = list[tuple[str, dict[str, Any]]]
Handler = Callable[["Context", dict[str, Any]], "dict[str, Any] | Response"]


@dataclass(frozen=True)
class Capability:
    """A capability URI, its session-level object, and its object for each account (or None
    when the account does not support it)."""

    uri: str
    session: Callable[[Config], dict[str, Any]]
    account: Callable[[Access], dict[str, Any] | None] = lambda access: {}


def personal_only(value: dict[str, Any]) -> Callable[[Access], dict[str, Any] | None]:
    """An account capability offered only in the user's own account (e.g. submission)."""
    return lambda access: value if access.is_personal else None


@dataclass(frozen=True)
class Method:
    name: str
    capability: str
    handler: Handler
    writes: bool = False
    needs_store: bool = True  # False: answered on the event loop (Core/echo)
    account_argument: str | None = "accountId"


@dataclass
class User:
    """The authenticated principal of a request."""

    account_id: str
    name: str
    read_only: bool = False  # a read-only API token
    access: dict[str, Access] = field(default_factory=dict)
    session_state: str = ""  # of the session object with this access
    # What was verified: ("password", its hash) or ("token", its hash).
    credential: tuple[str, str] = ("", "")
    expires: float = math.inf  # when the browser access token it came with expires


@dataclass
class Context:
    """What a method handler works with: the user, the store, and the request's state."""

    config: Config
    store: Store
    blobs: BlobStore
    user: User
    using: frozenset[str]
    registry: Registry
    created_ids: dict[str, str] = field(default_factory=dict)
    changed: dict[str, dict[str, int]] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)  # the current method's parsed arguments
    after_commit: list[Callable[[], None]] = field(default_factory=list)  # after the next write
    # What the process offers the types beyond the store ("webpush": the push sender).
    services: dict[str, Any] = field(default_factory=dict)

    def resolve_creation_id(self, creation_id: str) -> str | None:
        return self.created_ids.get(creation_id)

    def account(self, account_id: Any, *, writes: bool = False, error: str = "account") -> Access:
        """The user's access to an account, or the RFC's error for it (§3.6.2)."""
        access = self.user.access.get(account_id) if isinstance(account_id, str) else None
        if access is None:
            kind = "fromAccountNotFound" if error == "fromAccount" else "accountNotFound"
            raise MethodError(kind, f"no account {account_id!r} for this user")
        if writes and access.is_read_only:
            raise MethodError("accountReadOnly", f"account {account_id} is read-only")
        if writes and self.user.read_only:
            raise MethodError("forbidden", "this API token may only read")
        return access

    @contextmanager
    def read(self, account_id: str) -> Iterator[Transaction]:
        with self.store.read(account_id) as txn:
            yield txn

    @contextmanager
    def write(self, account_id: str) -> Iterator[Transaction]:
        with self.store.write(account_id) as txn:
            yield txn
        if txn.changed:
            self.changed.setdefault(account_id, {}).update(txn.changed)
        work, self.after_commit = self.after_commit, []
        for then in work:
            then()

    def keep(self, blob_id: str, data: bytes) -> None:
        """The bytes of a blob the next write references: made sure of after its commit."""
        self.after_commit.append(lambda: self.blobs.ensure(blob_id, data))


class Registry:
    def __init__(self) -> None:
        self.capabilities: dict[str, Capability] = {}
        self.methods: dict[str, Method] = {}
        self.types: dict[str, Any] = {}
        self.provisioners: list[Callable[[Transaction, list[str]], None]] = []

    def provision(self, store: Store, account_id: str) -> None:
        """Give an account what every type starts it with, and what follows from its
        addresses (its name and its aliases); safe to repeat, and repeated when they change."""
        account = store.account_by_id(account_id)
        addresses = [account.name, *store.aliases(account_id)] if account else []
        with store.write(account_id) as txn:
            for provision in self.provisioners:
                provision(txn, addresses)

    def capability(self, cap: Capability) -> Capability:
        self.capabilities[cap.uri] = cap
        return cap

    def method(
        self,
        name: str,
        capability: str,
        *,
        writes: bool = False,
        needs_store: bool = True,
        account_argument: str | None = "accountId",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.methods[name] = Method(
                name, capability, handler, writes, needs_store, account_argument
            )
            return handler

        return register

    def account_capabilities(self, access: Access) -> dict[str, Any]:
        out = {}
        for uri, cap in self.capabilities.items():
            value = cap.account(access)
            if value is not None:
                out[uri] = value
        return out


REGISTRY = Registry()
