"""The Email type (RFC 8621 §4): its declaration over the generic engine, with the hooks for
Email/set (create by composing, keyword and mailbox updates, destroy), Email/copy, and
Email/query's collapseThreads. Email/get and Email/import have modules of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from ...config import host_name
from ...mail.compose import ComposeError, compose_message
from ...mail.search import parse_query
from ...mail.shape import bad_properties
from ...protocol.blobs import read_blob
from ...protocol.engine import DataType, Filter, Hooks, Property, register_type
from ...protocol.engine.query import Results
from ...protocol.errors import SetError, invalid_properties
from ...protocol.registry import Context
from ...protocol.values import (
    BOOLEAN,
    ID_KIND,
    STRING,
    UNSIGNED_INT,
    UTC_DATE_KIND,
    Kind,
    ListOf,
    MapOf,
    Resolver,
)
from ...store.base import Transaction
from ..mailbox import MAIL, MAX_ATTACHMENTS, MAX_MAILBOXES_PER_EMAIL
from . import index
from .get import same_property, shown_properties
from .store import Parsed, bump_mailboxes, parse, release_email, store_email
from .view import CONVENIENCE

KEYWORD_FORBIDDEN = set('(){]%*"\\')
MAX_KEYWORDS = 1000


class Keyword(Kind):
    """§4.1.1: 1-255 of %x21-%x7e but ( ) { ] % * " \\, returned in lowercase."""

    name = 'a keyword (1-255 printable ASCII characters, none of ( ) { ] % * " \\)'

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if (
            not isinstance(value, str)
            or not 1 <= len(value) <= 255
            or any(not 0x21 <= ord(c) <= 0x7E or c in KEYWORD_FORBIDDEN for c in value)
        ):
            raise ValueError(f"must be {self.name}")
        return value.lower()


class TrueValue(Kind):
    name = "true"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if value is not True:
            raise ValueError("must be true")
        return value


MAILBOX_IDS = MapOf(ID_KIND, TrueValue())
KEYWORDS = MapOf(Keyword(), TrueValue())


def mailboxes_problem(txn: Transaction, mailbox_ids: dict[str, Any]) -> str | None:
    if not mailbox_ids:
        return "an Email must be in at least one mailbox"
    missing = set(mailbox_ids) - set(txn.get("Mailbox", list(mailbox_ids)))
    return f"no mailbox {', '.join(sorted(missing))}" if missing else None


def check_mailboxes(txn: Transaction, mailbox_ids: dict[str, Any]) -> None:
    problem = mailboxes_problem(txn, mailbox_ids)
    if problem:
        raise invalid_properties(problem, "mailboxIds")


def check_limits(email: dict[str, Any]) -> None:
    """RFC 8621 §4.6: tooManyMailboxes past maxMailboxesPerEmail, tooManyKeywords past
    MAX_KEYWORDS (every input is bounded)."""
    if len(email.get("mailboxIds") or ()) > MAX_MAILBOXES_PER_EMAIL:
        raise SetError(
            "tooManyMailboxes",
            f"an Email may be in at most {MAX_MAILBOXES_PER_EMAIL} mailboxes",
            ["mailboxIds"],
        )
    if len(email.get("keywords") or ()) > MAX_KEYWORDS:
        raise SetError(
            "tooManyKeywords", f"an Email may have at most {MAX_KEYWORDS} keywords", ["keywords"]
        )


def _leaf_blobs(part: dict[str, Any]) -> Iterator[str]:
    if part.get("subParts"):
        for sub in part["subParts"]:
            yield from _leaf_blobs(sub)
    elif part.get("blobId"):
        yield part["blobId"]


class EmailHooks(Hooks):
    def blobs(self, record: dict[str, Any]) -> Iterable[str]:
        """Its message; a part stored apart (before parts were derived from the message)."""
        return [record["blobId"], *_leaf_blobs(record["summary"]["bodyStructure"])]

    def prepare(self, ctx: Context, account_id: str, given: dict[str, Any]) -> Any:
        return prepare_create(ctx, account_id, given)

    def create_record(
        self, ctx: Context, txn: Transaction, given: dict[str, Any], prepared: Any = None
    ) -> dict[str, Any] | None:
        """§4.6: store the message composed from the Email object, like an import."""
        return create_email(ctx, txn, given, prepared)

    def prepare_copy(self, ctx: Context, original: dict[str, Any]) -> Any:
        return prepare_copy(ctx, original)

    def copy_record(
        self, ctx: Context, txn: Transaction, original: dict[str, Any], overrides: dict[str, Any],
        prepared: Any = None,
    ) -> dict[str, Any] | None:  # fmt: skip
        """§4.7: the same message in another account, with mailboxIds (required), keywords
        and receivedAt from the create object or else the original."""
        return copy_email(ctx, txn, original, overrides, prepared)

    def update(
        self, ctx: Context, txn: Transaction, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        check_limits(new)
        check_mailboxes(txn, new["mailboxIds"])
        if old["mailboxIds"] != new["mailboxIds"] or old["keywords"] != new["keywords"]:
            bump_mailboxes(txn, old["mailboxIds"], new["mailboxIds"])
            index.index_flags(txn, old["id"], new)

    def shown(
        self, ctx: Context, txn: Transaction, record: dict[str, Any], names: list[str]
    ) -> dict[str, Any]:
        """Email/get's properties beyond the declaration (subject, bodyStructure…), which a
        client may send back unchanged in an update (RFC 8620 §5.3)."""
        return shown_properties(ctx, record, names)

    def same(self, name: str, given: Any, current: Any) -> bool:
        return same_property(name, given, current)

    def destroy(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        release_email(txn, record["id"], record)
        bump_mailboxes(txn, record["mailboxIds"])

    def query(self, ctx: Context, txn: Transaction, filter: Any, sort: Any) -> Results:
        return index.query(ctx, EMAIL, txn, filter, sort)

    def query_dependents(
        self, ctx: Context, txn: Transaction, since: int, changed: set[str]
    ) -> set[str]:
        return index.query_dependents(ctx, EMAIL, txn, since, changed)


class HeaderCondition(Kind):
    """§4.4.1 header: [name] or [name, text]."""

    name = "an array of a header field name and maybe a text"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if (
            not isinstance(value, list)
            or len(value) not in (1, 2)
            or not all(isinstance(v, str) for v in value)
            or not value[0]
        ):
            raise ValueError(f"must be {self.name}")
        return value


def _words(field: str) -> Filter:
    return Filter(STRING, index=lambda v: ("words", field, parse_query(v)))


def _thread(kind: str, negate: bool = False) -> Filter:
    if negate:
        return Filter(Keyword(), index=lambda v: ("not", [(kind, v)]))
    return Filter(Keyword(), index=lambda v: (kind, v))


EMAIL = register_type(
    DataType(
        "Email",
        MAIL,
        (
            Property("blobId", ID_KIND, server_set=True),
            Property("threadId", ID_KIND, server_set=True),
            Property("mailboxIds", MAILBOX_IDS),
            Property("keywords", KEYWORDS, default={}),
            Property("size", UNSIGNED_INT, server_set=True),
            Property("receivedAt", UTC_DATE_KIND, default=None, immutable=True),
        ),
        filters={
            "inMailbox": Filter(ID_KIND, index=lambda v: ("mailbox", v)),
            "inMailboxOtherThan": Filter(
                ListOf(ID_KIND), index=lambda v: ("mailbox_other_than", v)
            ),
            "before": Filter(UTC_DATE_KIND, index=lambda v: ("received_before", index.millis(v))),
            "after": Filter(UTC_DATE_KIND, index=lambda v: ("received_after", index.millis(v))),
            "minSize": Filter(UNSIGNED_INT, index=lambda v: ("min_size", v)),
            "maxSize": Filter(UNSIGNED_INT, index=lambda v: ("max_size", v)),
            "allInThreadHaveKeyword": _thread("thread_all"),
            "someInThreadHaveKeyword": _thread("thread_some"),
            "noneInThreadHaveKeyword": _thread("thread_some", negate=True),
            "hasKeyword": _thread("keyword"),
            "notKeyword": _thread("keyword", negate=True),
            "hasAttachment": Filter(BOOLEAN, index=lambda v: ("attachment", v)),
            "text": _words("all"),
            **{field: _words(field) for field in ("from", "to", "cc", "bcc", "subject", "body")},
            "header": Filter(
                HeaderCondition(),
                index=lambda v: ("header", v[0].lower(), v[1].lower() if len(v) > 1 else None),
            ),
        },
        # The index's sort key of each (from, to and subject: per collation).
        sorts={
            "receivedAt": "received_at",
            "size": "size",
            "from": "from",
            "to": "to",
            "subject": "subject",
            "sentAt": "sent_at",
            "hasKeyword": "keyword",
            "allInThreadHaveKeyword": "thread_all",
            "someInThreadHaveKeyword": "thread_some",
        },
        sort_arguments={
            name: {"keyword": Keyword()}
            for name in ("hasKeyword", "allInThreadHaveKeyword", "someInThreadHaveKeyword")
        },
        methods=("changes", "set", "query", "queryChanges", "copy"),
        hooks=EmailHooks(),
        extra_args={
            "query": {"collapseThreads": (BOOLEAN, False)},
            "queryChanges": {"collapseThreads": (BOOLEAN, False)},
        },
    )
)


# -- Email/set create (§4.6) -----------------------------------------------------------------------

COMPOSED = {*CONVENIENCE, "bodyStructure", "bodyValues", "textBody", "htmlBody", "attachments"}
CREATE_KINDS = {"mailboxIds": MAILBOX_IDS, "keywords": KEYWORDS, "receivedAt": UTC_DATE_KIND}


def checked_metadata(
    ctx: Context,
    txn: Transaction,
    given: dict[str, Any],
    kinds: dict[str, Kind],
    also_allowed: Callable[[str], bool] = lambda name: False,
    also_bad: list[str] | None = None,
) -> dict[str, Any]:
    """The metadata properties of an import, create or copy, checked against their kinds;
    every unknown, bad or missing one (mailboxIds is required) reported together as
    invalidProperties, with those `also_bad` found by the caller; the mailboxes must exist."""
    bad = [] if "mailboxIds" in given else ["mailboxIds"]
    bad += also_bad or []
    checked: dict[str, Any] = {}
    for name, value in given.items():
        if name not in kinds:
            if not also_allowed(name):
                bad.append(name)
            continue
        try:
            checked[name] = kinds[name].check(value, ctx.resolve_creation_id)
        except ValueError:
            bad.append(name)
    check_limits(checked)
    if "mailboxIds" in checked and mailboxes_problem(txn, checked["mailboxIds"]):
        bad.append("mailboxIds")
    if bad:
        raise invalid_properties(f"invalid, missing or not settable: {', '.join(bad)}", *bad)
    return checked


def add_email(
    txn: Transaction, prepared: Parsed | SetError | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Store a message parsed before the transaction; the created response of import, create
    and copy (§4.6-4.8)."""
    if isinstance(prepared, SetError):
        raise prepared
    assert prepared is not None
    email_id, record = store_email(
        txn, prepared, metadata["mailboxIds"], metadata.get("keywords", {}),
        metadata.get("receivedAt"),
    )  # fmt: skip
    return {"id": email_id, **{k: record[k] for k in ("blobId", "threadId", "size")}}


def _attached(part: Any) -> list[str]:
    """The blobIds of a part given to Email/set create and of its subparts, each as often as
    it is used."""
    if not isinstance(part, dict):
        return []
    found = [part["blobId"]] if isinstance(part.get("blobId"), str) else []
    for sub in part.get("subParts") or [] if isinstance(part.get("subParts"), list) else []:
        found += _attached(sub)
    return found


def prepare_create(ctx: Context, account_id: str, given: dict[str, Any]) -> Parsed | None:
    """§4.6: compose the message and parse it, before the write transaction. The blobs it
    attaches are counted against maxSizeAttachmentsPerEmail before any is read, and each is
    read once, however often it is attached."""
    body = {k: v for k, v in given.items() if k not in CREATE_KINDS}
    if bad_properties(body):
        return None  # reported with the metadata, in the transaction
    attached = [b for p in ("bodyStructure", "textBody", "htmlBody", "attachments")
                for part in _parts(body.get(p)) for b in _attached(part)]  # fmt: skip
    user = ctx.user.account_id
    loaded: dict[str, bytes | None] = {}
    with ctx.read(account_id) as txn:
        sizes = {b: txn.blob_size(b, user) for b in set(attached)}
        total = sum(sizes[b] or 0 for b in attached)
        if total > MAX_ATTACHMENTS:
            raise SetError(
                "tooLarge",
                f"the attachments come to {total} octets; maxSizeAttachmentsPerEmail is "
                f"{MAX_ATTACHMENTS}", ["attachments"], maxSize=MAX_ATTACHMENTS,
            )  # fmt: skip

        def load_blob(blob_id: str) -> bytes | None:
            if blob_id not in loaded:
                loaded[blob_id] = read_blob(ctx.blobs, txn, blob_id, user)
            return loaded[blob_id]

        try:
            raw = compose_message(
                body, load_blob, now=datetime.now(UTC), hostname=host_name(ctx.config)
            )
        except ComposeError as e:
            extra = {"notFound": e.not_found} if e.kind == "blobNotFound" else {}
            raise SetError(e.kind, e.message, e.properties, **extra) from None
    if sum(len(data or b"") for data in loaded.values()) > MAX_ATTACHMENTS:  # derived blobs
        raise SetError("tooLarge", "the attachments are over maxSizeAttachmentsPerEmail",
                       ["attachments"], maxSize=MAX_ATTACHMENTS)  # fmt: skip
    blob_id = ctx.blobs.put(raw)
    ctx.keep(blob_id, raw)
    return parse(blob_id, raw)


def _parts(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if isinstance(value, dict) else []


def create_email(
    ctx: Context, txn: Transaction, given: dict[str, Any], prepared: Parsed | SetError | None
) -> dict[str, Any]:
    composed = lambda name: name in COMPOSED or name.startswith("header:")  # noqa: E731
    body = {k: v for k, v in given.items() if k not in CREATE_KINDS}
    metadata = checked_metadata(ctx, txn, given, CREATE_KINDS, composed, bad_properties(body))
    return add_email(txn, prepared, metadata)


def prepare_copy(ctx: Context, original: dict[str, Any]) -> Parsed:
    raw = ctx.blobs.read(original["blobId"])
    if raw is None:
        raise SetError("notFound", "the original message is gone")
    return parse(original["blobId"], raw)


def copy_email(
    ctx: Context, txn: Transaction, original: dict[str, Any], overrides: dict[str, Any],
    prepared: Parsed | SetError | None,
) -> dict[str, Any]:  # fmt: skip
    metadata = {k: original[k] for k in ("keywords", "receivedAt")}
    metadata |= checked_metadata(ctx, txn, overrides, CREATE_KINDS)
    return add_email(txn, prepared, metadata)
