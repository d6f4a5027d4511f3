"""A data type is a declaration: its properties, filters, sorts and the hooks where it differs
from the generic engine."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..registry import REGISTRY, Context, Registry, Response
from ..values import Kind
from .args import ArgSpec, parse_args

if TYPE_CHECKING:
    from ...store.base import Transaction
    from .query import Results

REQUIRED: Any = object()
# An optional property that is simply absent when not set: /get leaves it out, a create does
# not fill it in, and null in an update removes it (JSContact, RFC 9553 §1.3.3).
ABSENT: Any = object()
Record = dict[str, Any]


@dataclass(frozen=True)
class Property:
    name: str
    kind: Kind
    default: Any = REQUIRED  # REQUIRED: must be given on create (unless server-set)
    server_set: bool = False
    immutable: bool = False

    def default_value(self) -> Any:
        if self.default is REQUIRED or self.default is ABSENT:
            return None
        return copy.deepcopy(self.default)

    @property
    def absent(self) -> bool:
        return self.default is ABSENT


@dataclass(frozen=True)
class Filter:
    """A FilterCondition property: the kind of its value and a predicate over one record (for
    the generic query), or what the type's own query hook makes of the value."""

    kind: Kind
    test: Callable[[Record, Any], bool] = lambda record, value: False
    index: Callable[[Any], Any] = lambda value: None


class Hooks:
    """Where a type differs from the generic engine. Every default is the plain behaviour.

    Hooks that raise SetError reject one record; they must not write before they raise.
    """

    def visible(self, ctx: Context, record: Record) -> bool:
        """Whether the request's user may see the record at all (otherwise it is notFound):
        PushSubscriptions are seen only with the credential that made them."""
        return True

    def present(self, ctx: Context, txn: Transaction, records: dict[str, Record]) -> None:
        """Fill computed properties into records read for /get (in place)."""

    def prepare(self, ctx: Context, account_id: str, given: dict[str, Any]) -> Any:
        """The slow work of a create, done before the write transaction (which then holds
        its lock for the database writes alone): Email composes and parses its message.
        Its result is given to create_record; a SetError raised here fails that create."""
        return None

    def create_record(
        self, ctx: Context, txn: Transaction, given: dict[str, Any], prepared: Any = None
    ) -> Record | None:
        """Create from the client's object in the type's own way (Email stores the message
        `prepare` composed); return the created response's properties with "id", or None
        for the generic create."""
        return None

    def prepare_copy(self, ctx: Context, original: Record) -> Any:
        """Like `prepare`, for a copy of a record from another account."""
        return None

    def copy_record(
        self, ctx: Context, txn: Transaction, original: Record, overrides: dict[str, Any],
        prepared: Any = None,
    ) -> Record | None:  # fmt: skip
        """Create a copy of a record from another account in the type's own way; return the
        created response's properties with "id", or None for the generic copy."""
        return None

    def create(self, ctx: Context, txn: Transaction, record: Record) -> None:
        """Check and complete a record about to be created (in place; may set server-set
        properties and `id`)."""

    def update(self, ctx: Context, txn: Transaction, old: Record, new: Record) -> None:
        """Check and complete a record about to be updated (in place: by assigning its
        properties, not by changing their values within)."""

    def shown(
        self, ctx: Context, txn: Transaction, record: Record, names: list[str]
    ) -> dict[str, Any]:
        """The values /get shows for properties the declaration does not list (Email:
        subject, bodyStructure, header:*…), so an update may send them back unchanged; a
        name left out is not a property of the type."""
        return {}

    def same(self, name: str, given: Any, current: Any) -> bool:
        """Whether a value an update sends for a property it may not change is the one the
        record has (§5.3: then it is no change)."""
        return bool(given == current)

    def destroy(self, ctx: Context, txn: Transaction, record: Record) -> None:
        """Check a record about to be destroyed, and release what it holds."""

    def query(self, ctx: Context, txn: Transaction, filter: Any, sort: Any) -> Results | None:
        """Every matching id in order, from the type's own index; None for the generic query."""
        return None

    def query_dependents(
        self, ctx: Context, txn: Transaction, since: int, changed: set[str]
    ) -> set[str]:
        """For /queryChanges: records whose place in the results of this query (ctx.args) may
        have moved since `since` though they did not change themselves, because records they
        depend on (`changed`, live ones) did."""
        return set()

    def blobs(self, record: Record) -> Iterable[str]:
        """The blobs a stored record holds a reference to, each once per reference
        (`jmapd check` counts them against the blob table)."""
        return ()

    def provision(self, txn: Transaction, addresses: list[str]) -> None:
        """Create what a new account starts with (e.g. the default mailboxes), and keep what
        follows from its addresses (its name and aliases: the default identities); called
        again whenever those change, so it must be safe to repeat."""

    def finish_set(self, ctx: Context, txn: Transaction, result: dict[str, Any]) -> None:
        """After every create, update and destroy of a /set, in its transaction: what the
        type's own arguments ask to do once all succeeded (AddressBook onSuccessSetIsDefault),
        reported in `result` ("created", "updated": id → properties the server changed)."""

    def after_set(self, ctx: Context, result: dict[str, Any]) -> Response:
        """Further method calls a /set makes once it committed, whose responses follow its
        own (EmailSubmission's implicit Email/set, RFC 8621 §7.5); given its response."""
        return []


@dataclass
class DataType:
    name: str
    capability: str
    properties: tuple[Property, ...]
    filters: dict[str, Filter] = field(default_factory=dict)
    # How the generic query reads each sort's value from a record, or what the type's own query
    # hook makes of it (Email: its index column).
    sorts: dict[str, Any] = field(default_factory=dict)
    # Comparator properties a sort takes beyond the standard ones ("keyword": its Kind),
    # all required.
    sort_arguments: dict[str, dict[str, Kind]] = field(default_factory=dict)
    methods: tuple[str, ...] = ("get", "changes", "set", "query", "queryChanges", "copy")
    hooks: Hooks = field(default_factory=Hooks)
    # Arguments a method of this type takes beyond the standard ones, by method suffix
    # ("set": {"onDestroyRemoveEmails": (BOOLEAN, False)}); handlers find them in ctx.args.
    extra_args: dict[str, ArgSpec] = field(default_factory=dict)
    # Server-set counts that change with other records (Mailbox totalEmails, …): /changes
    # answers `updatedProperties` with them when nothing else changed (RFC 8621 §2.2).
    count_properties: tuple[str, ...] = ()
    # A type of the user rather than of an account (PushSubscription, RFC 8620 §7.2): its
    # methods take no accountId and answer no accountId or state; its records are kept in
    # the user's own account.
    per_user: bool = False
    # Properties /get never shows: not by default, and asking for one is `forbidden`.
    private: tuple[str, ...] = ()
    # The kind of a property the declaration does not list but the type keeps as given
    # (JSContact vendor-specific and unknown properties, RFC 9553 §1.7.4, §1.8.1), or None:
    # no property of the type. Such properties are absent unless set.
    other_property: Callable[[str], Kind | None] = lambda name: None

    def __post_init__(self) -> None:
        self.by_name = {p.name: p for p in self.properties}
        if "id" not in self.by_name:
            from ..values import ID_KIND

            self.by_name["id"] = Property("id", ID_KIND, server_set=True, immutable=True)

    def property(self, name: str) -> Property | None:
        """A declared property, or one the type keeps as given (`other_property`)."""
        prop = self.by_name.get(name)
        if prop is None:
            kind = self.other_property(name)
            prop = Property(name, kind, default=ABSENT) if kind is not None else None
        return prop

    def shown_properties(self, record: Record) -> list[str]:
        """The properties /get shows by default for a stored record."""
        names = [p.name for p in self.by_name.values() if p.name not in self.private
                 and not (p.absent and p.name not in record)]  # fmt: skip
        return names + [n for n in record if n not in self.by_name and self.property(n)]


PER_ACCOUNT = ("accountId", "ifInState")  # arguments a per-user type does not take


def method_args(
    ctx: Context, dt: DataType, method: str, spec: ArgSpec, args: dict[str, Any]
) -> dict[str, Any]:
    """Parse a method's arguments: the standard ones plus the type's own (kept in ctx.args).
    A per-user type's methods work in the user's own account."""
    if dt.per_user:
        spec = {k: v for k, v in spec.items() if k not in PER_ACCOUNT}
    ctx.args = parse_args(args, spec | dt.extra_args.get(method, {}), ctx.resolve_creation_id)
    if dt.per_user:
        ctx.args["accountId"], ctx.args["ifInState"] = ctx.user.account_id, None
    return ctx.args


def answer(dt: DataType, result: dict[str, Any], *per_account: str) -> dict[str, Any]:
    """A method's response; without the arguments a per-user type does not return."""
    if dt.per_user:
        for name in ("accountId", *per_account):
            result.pop(name, None)
    return result


def register_type(datatype: DataType, registry: Registry = REGISTRY) -> DataType:
    """Register Foo/get, Foo/changes, … for a type, each bound to the generic handler."""
    from . import changes, copy, get, query, set

    handlers = {
        "get": (get.get, False),
        "changes": (changes.changes, False),
        "set": (set.set_method, True),
        "query": (query.query, False),
        "queryChanges": (query.query_changes, False),
        "copy": (copy.copy_, True),
    }
    registry.types[datatype.name] = datatype
    registry.provisioners.append(datatype.hooks.provision)
    for suffix in datatype.methods:
        handler, writes = handlers[suffix]
        registry.method(
            f"{datatype.name}/{suffix}",
            datatype.capability,
            writes=writes,
            account_argument=None if datatype.per_user else "accountId",
        )(_bind(handler, datatype))
    return datatype


def _bind(handler: Callable[..., Any], datatype: DataType) -> Callable[..., Any]:
    def bound(ctx: Context, args: dict[str, Any]) -> Any:
        return handler(ctx, datatype, args)

    bound.__name__ = f"{datatype.name}_{handler.__name__}"
    return bound
