"""The Email type (RFC 8621 §4): its declaration over the generic engine, with the hooks for
Email/set (create by composing, keyword and mailbox updates, destroy), Email/copy, and
Email/query's collapseThreads. Email/get and Email/import have modules of their own."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ...mail.compose import ComposeError, compose_message
from ...protocol.engine import DataType, Filter, Hooks, Property, register_type
from ...protocol.engine.query import run_query
from ...protocol.errors import SetError, invalid_properties
from ...protocol.registry import Context
from ...protocol.values import (
    BOOLEAN,
    ID_KIND,
    UNSIGNED_INT,
    UTC_DATE_KIND,
    Kind,
    ListOf,
    MapOf,
    Resolver,
)
from ...store.base import Transaction
from ..mailbox import MAIL
from .store import bump_mailboxes, set_thread_members, store_email
from .view import CONVENIENCE

KEYWORD_FORBIDDEN = set('(){]%*"\\')


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


def check_mailboxes(txn: Transaction, mailbox_ids: dict[str, Any]) -> None:
    if not mailbox_ids:
        raise invalid_properties("an Email must be in at least one mailbox", "mailboxIds")
    missing = set(mailbox_ids) - set(txn.get("Mailbox", list(mailbox_ids)))
    if missing:
        raise invalid_properties(f"no mailbox {', '.join(sorted(missing))}", "mailboxIds")


class EmailHooks(Hooks):
    def create_record(
        self, ctx: Context, txn: Transaction, given: dict[str, Any]
    ) -> dict[str, Any] | None:
        """§4.6: compose a message from the Email object and store it like an import."""
        return create_email(ctx, txn, given)

    def copy_record(
        self, ctx: Context, txn: Transaction, original: dict[str, Any], overrides: dict[str, Any]
    ) -> dict[str, Any] | None:
        """§4.7: the same message in another account, with mailboxIds (required), keywords
        and receivedAt from the create object or else the original."""
        return copy_email(ctx, txn, original, overrides)

    def update(
        self, ctx: Context, txn: Transaction, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        check_mailboxes(txn, new["mailboxIds"])
        if old["mailboxIds"] != new["mailboxIds"] or old["keywords"] != new["keywords"]:
            bump_mailboxes(txn, old["mailboxIds"], new["mailboxIds"])

    def destroy(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        set_thread_members(txn, record["threadId"], remove=record["id"])
        bump_mailboxes(txn, record["mailboxIds"])

    def query(self, ctx: Context, txn: Transaction, filter: Any, sort: Any) -> list[str] | None:
        if not ctx.args.get("collapseThreads"):
            return None
        ids = run_query(ctx, EMAIL, txn, filter, sort, own=False)
        threads = {id: e["threadId"] for id, e in txn.get("Email", ids).items()}
        seen: set[str] = set()
        out = []
        for id in ids:
            if threads[id] not in seen:
                seen.add(threads[id])
                out.append(id)
        return out


def _summary(name: str) -> Any:
    return lambda r: r["summary"]["properties"][name]


def _first_address(name: str) -> Any:
    def key(r: dict[str, Any]) -> str | None:
        addresses = r["summary"]["properties"][name] or []
        return (addresses[0]["name"] or addresses[0]["email"]) if addresses else None

    return key


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
            "inMailbox": Filter(ID_KIND, lambda r, v: v in r["mailboxIds"]),
            "inMailboxOtherThan": Filter(
                ListOf(ID_KIND), lambda r, v: bool(set(r["mailboxIds"]) - set(v))
            ),
            "before": Filter(UTC_DATE_KIND, lambda r, v: r["receivedAt"] < v),
            "after": Filter(UTC_DATE_KIND, lambda r, v: r["receivedAt"] >= v),
            "minSize": Filter(UNSIGNED_INT, lambda r, v: r["size"] >= v),
            "maxSize": Filter(UNSIGNED_INT, lambda r, v: r["size"] < v),
            "hasKeyword": Filter(Keyword(), lambda r, v: bool(r["keywords"].get(v))),
            "notKeyword": Filter(Keyword(), lambda r, v: not r["keywords"].get(v)),
            "hasAttachment": Filter(BOOLEAN, lambda r, v: r["summary"]["hasAttachment"] == v),
        },
        sorts={
            "receivedAt": lambda r: r["receivedAt"],
            "size": lambda r: r["size"],
            "sentAt": _summary("sentAt"),
            "subject": _summary("subject"),
            "from": _first_address("from"),
            "to": _first_address("to"),
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
) -> dict[str, Any]:
    """The metadata properties of an import, create or copy, checked against their kinds;
    every unknown, bad or missing one (mailboxIds is required) reported together as
    invalidProperties; the mailboxes must exist."""
    bad = [] if "mailboxIds" in given else ["mailboxIds"]
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
    if bad:
        raise invalid_properties(f"invalid, missing or not settable: {', '.join(bad)}", *bad)
    check_mailboxes(txn, checked["mailboxIds"])
    return checked


def add_email(
    ctx: Context, txn: Transaction, blob_id: str, raw: bytes, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Store the message; the created response of import, create and copy (§4.6-4.8)."""
    email_id, record = store_email(
        ctx, txn, blob_id, raw, metadata["mailboxIds"], metadata.get("keywords", {}),
        metadata.get("receivedAt"),
    )  # fmt: skip
    return {"id": email_id, **{k: record[k] for k in ("blobId", "threadId", "size")}}


def create_email(ctx: Context, txn: Transaction, given: dict[str, Any]) -> dict[str, Any]:
    composed = lambda name: name in COMPOSED or name.startswith("header:")  # noqa: E731
    metadata = checked_metadata(ctx, txn, given, CREATE_KINDS, composed)
    user = ctx.user.account_id

    def load_blob(blob_id: str) -> bytes | None:
        found = txn.blob_size(blob_id, user) is not None
        return ctx.blobs.read(blob_id) if found else None

    body = {k: v for k, v in given.items() if k not in CREATE_KINDS}
    try:
        raw = compose_message(body, load_blob, now=datetime.now(UTC), hostname=_hostname(ctx))
    except ComposeError as e:
        extra = {"notFound": e.not_found} if e.kind == "blobNotFound" else {}
        raise SetError(e.kind, e.message, e.properties, **extra) from None
    return add_email(ctx, txn, ctx.blobs.put(raw), raw, metadata)


def copy_email(
    ctx: Context, txn: Transaction, original: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    metadata = {k: original[k] for k in ("keywords", "receivedAt")}
    metadata |= checked_metadata(ctx, txn, overrides, CREATE_KINDS)
    raw = ctx.blobs.read(original["blobId"])
    if raw is None:
        raise SetError("notFound", "the original message is gone")
    return add_email(ctx, txn, original["blobId"], raw, metadata)


def _hostname(ctx: Context) -> str:
    """For generated Message-IDs: the public host name, else this machine's."""
    return urlsplit(str(ctx.config.public_url)).hostname or socket.getfqdn() or "jmapd"
