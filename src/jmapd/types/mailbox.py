"""Mailbox (RFC 8621 §2) and the mail capability (§1.3.1)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from ..protocol.engine import DataType, Filter, Hooks, Property, register_type
from ..protocol.engine.query import ListResults, Results, run_query
from ..protocol.errors import SetError, invalid_properties
from ..protocol.registry import REGISTRY, Capability, Context
from ..protocol.values import (
    BOOLEAN,
    ID_KIND,
    OBJECT,
    STRING,
    UNSIGNED_INT,
    Kind,
    Nullable,
    Resolver,
)
from ..store.base import Access, Transaction

MAIL = "urn:ietf:params:jmap:mail"
MAX_DEPTH = 10
MAX_NAME_OCTETS = 255
MAX_MAILBOXES_PER_EMAIL = 256
MAX_ATTACHMENTS = 50_000_000

# The IANA "IMAP Mailbox Name Attributes" registry (RFC 8457), lowercased (§2 role).
ROLES = (
    "all", "archive", "drafts", "flagged", "important", "inbox", "junk", "sent",
    "subscribed", "trash", "snoozed", "scheduled", "memos",
)  # fmt: skip
DEFAULT_MAILBOXES = (
    ("Inbox", "inbox", 1),
    ("Drafts", "drafts", 2),
    ("Sent", "sent", 3),
    ("Archive", "archive", 4),
    ("Junk", "junk", 5),
    ("Trash", "trash", 6),
)
COUNTS = ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")
RIGHTS = (
    "mayReadItems", "mayAddItems", "mayRemoveItems", "maySetSeen", "maySetKeywords",
    "mayCreateChild", "mayRename", "mayDelete", "maySubmit",
)  # fmt: skip


def _account_capability(access: Access) -> dict[str, Any]:
    return {
        "maxMailboxesPerEmail": MAX_MAILBOXES_PER_EMAIL,
        "maxMailboxDepth": MAX_DEPTH,
        "maxSizeMailboxName": MAX_NAME_OCTETS,
        "maxSizeAttachmentsPerEmail": MAX_ATTACHMENTS,
        # What Email/query sorts by, from the Email declaration itself.
        "emailQuerySortOptions": sorted(getattr(REGISTRY.types.get("Email"), "sorts", {})),
        "mayCreateTopLevelMailbox": not access.is_read_only,
    }


REGISTRY.capability(Capability(MAIL, lambda config: {}, _account_capability))


class MailboxName(Kind):
    """§2 name: Net-Unicode (RFC 5198), 1 character to maxSizeMailboxName octets."""

    name = f"a name of 1 to {MAX_NAME_OCTETS} octets without control characters"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if not isinstance(value, str) or not value or len(value.encode()) > MAX_NAME_OCTETS:
            raise ValueError(f"must be {self.name}")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise ValueError("must not contain control characters")
        return unicodedata.normalize("NFC", value)


class Role(Kind):
    name = "null or a mailbox role of the IANA registry, in lowercase"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if value is not None and value not in ROLES:
            raise ValueError(f"must be {self.name}")
        return value


class SortOrder(Kind):
    name = "an UnsignedInt below 2^31"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        UNSIGNED_INT.check(value)
        if value >= 2**31:
            raise ValueError(f"must be {self.name}")
        return value


@dataclass
class Contents:
    """What a mailbox holds, as the Email type knows it. Until Email registers its own, every
    mailbox is empty."""

    def counts(self, txn: Transaction, mailbox_ids: list[str]) -> dict[str, dict[str, int]]:
        """mailboxId → totalEmails, unreadEmails, totalThreads, unreadThreads."""
        return {}

    def has_email(self, txn: Transaction, mailbox_id: str) -> bool:
        return False

    def remove_all(self, ctx: Context, txn: Transaction, mailbox_id: str) -> None:
        """Take every Email out of the mailbox; destroy those left in none (§2.5)."""


CONTENTS = Contents()


def _rights(access: Access) -> dict[str, bool]:
    writable = not access.is_read_only
    return {right: (right == "mayReadItems" or writable) for right in RIGHTS}


class MailboxHooks(Hooks):
    def present(self, ctx: Context, txn: Transaction, records: dict[str, Any]) -> None:
        counts = CONTENTS.counts(txn, list(records))
        rights = _rights(ctx.user.access[txn.account_id])
        for id, record in records.items():
            record.update(dict.fromkeys(COUNTS, 0) | counts.get(id, {}))
            record["myRights"] = rights

    def create(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        _check_place(txn, None, record)

    def update(
        self, ctx: Context, txn: Transaction, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        _check_place(txn, old["id"], new)

    def destroy(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        mailboxes = txn.get("Mailbox", None)
        if any(m["parentId"] == record["id"] for m in mailboxes.values()):
            raise SetError("mailboxHasChild", "the mailbox has child mailboxes")
        if CONTENTS.has_email(txn, record["id"]):
            if not ctx.args.get("onDestroyRemoveEmails"):
                raise SetError("mailboxHasEmail", "the mailbox has emails")
            CONTENTS.remove_all(ctx, txn, record["id"])

    def query(self, ctx: Context, txn: Transaction, filter: Any, sort: Any) -> Results | None:
        if not (ctx.args.get("sortAsTree") or ctx.args.get("filterAsTree")):
            return None
        ids = list(run_query(ctx, MAILBOX, txn, filter, sort, own=False).ids())
        parents = {id: m["parentId"] for id, m in txn.get("Mailbox", None).items()}
        if ctx.args.get("filterAsTree"):
            ids = _filter_as_tree(ids, parents)
        if ctx.args.get("sortAsTree"):
            ids = _sort_as_tree(ids, parents)
        return ListResults(ids)

    def provision(self, txn: Transaction, addresses: list[str]) -> None:
        if txn.get("Mailbox", None):
            return
        for name, role, order in DEFAULT_MAILBOXES:
            txn.put(
                "Mailbox",
                txn.new_id(),
                {"name": name, "parentId": None, "role": role, "sortOrder": order,
                 "isSubscribed": True},
            )  # fmt: skip


def _check_place(txn: Transaction, id: str | None, record: dict[str, Any]) -> None:
    """Unique name among siblings (else alreadyExists, with the sibling's id: a ruling where
    the RFC is silent), one mailbox per role, a parent that exists, no loop, and no deeper
    than maxMailboxDepth (§2)."""
    mailboxes = txn.get("Mailbox", None)
    others = {k: v for k, v in mailboxes.items() if k != id}
    problems: dict[str, str] = {}
    for other_id, other in others.items():
        if other["parentId"] == record["parentId"] and other["name"] == record["name"]:
            raise SetError("alreadyExists", "a sibling mailbox has this name", existingId=other_id)
        if record["role"] is not None and other["role"] == record["role"]:
            problems["role"] = f"another mailbox has role {record['role']}"
    parent_problem = _parent_problem(mailboxes, others, id, record["parentId"])
    if parent_problem:
        problems["parentId"] = parent_problem
    if problems:
        raise invalid_properties("; ".join(problems.values()), *problems)


def _parent_problem(
    mailboxes: dict[str, Any], others: dict[str, Any], id: str | None, parent: str | None
) -> str | None:
    depth = 1
    while parent is not None:
        if parent == id:
            return "a mailbox cannot be inside itself"
        if parent not in others:
            return f"no parent mailbox {parent}"
        depth, parent = depth + 1, others[parent]["parentId"]
        if depth > MAX_DEPTH:
            return f"deeper than maxMailboxDepth {MAX_DEPTH}"
    if id is not None and _subtree_depth(mailboxes, id) + depth - 1 > MAX_DEPTH:
        return f"deeper than maxMailboxDepth {MAX_DEPTH}"
    return None


def _subtree_depth(mailboxes: dict[str, Any], id: str) -> int:
    children = [k for k, m in mailboxes.items() if m["parentId"] == id]
    return 1 + max((_subtree_depth(mailboxes, c) for c in children), default=0)


def _filter_as_tree(ids: list[str], parents: dict[str, str | None]) -> list[str]:
    """§2.3 filterAsTree: only mailboxes whose every ancestor matched too."""
    matched = set(ids)

    def rooted(id: str) -> bool:
        parent = parents.get(id)
        return parent is None or (parent in matched and rooted(parent))

    return [id for id in ids if rooted(id)]


def _sort_as_tree(ids: list[str], parents: dict[str, str | None]) -> list[str]:
    """§2.3 sortAsTree: each parent before its children, siblings in the sorted order; a
    mailbox whose parent is not in the results is placed as a root."""
    included = set(ids)
    children: dict[str | None, list[str]] = {}
    for id in ids:
        parent = parents.get(id)
        children.setdefault(parent if parent in included else None, []).append(id)
    out: list[str] = []

    def walk(parent: str | None) -> None:
        for child in children.get(parent, []):
            out.append(child)
            walk(child)

    walk(None)
    return out


MAILBOX = register_type(
    DataType(
        "Mailbox",
        MAIL,
        (
            Property("name", MailboxName()),
            Property("parentId", Nullable(ID_KIND), default=None),
            Property("role", Role(), default=None),
            Property("sortOrder", SortOrder(), default=0),
            *(Property(c, UNSIGNED_INT, server_set=True) for c in COUNTS),
            Property("myRights", OBJECT, server_set=True),
            Property("isSubscribed", BOOLEAN, default=True),
        ),
        filters={
            "parentId": Filter(Nullable(ID_KIND), lambda r, v: r["parentId"] == v),
            "name": Filter(STRING, lambda r, v: v.casefold() in r["name"].casefold()),
            "role": Filter(Role(), lambda r, v: r["role"] == v),
            "hasAnyRole": Filter(BOOLEAN, lambda r, v: (r["role"] is not None) == v),
            "isSubscribed": Filter(BOOLEAN, lambda r, v: r["isSubscribed"] == v),
        },
        sorts={"sortOrder": lambda r: r["sortOrder"], "name": lambda r: r["name"]},
        methods=("get", "changes", "set", "query", "queryChanges"),
        hooks=MailboxHooks(),
        count_properties=COUNTS,
        extra_args={
            "set": {"onDestroyRemoveEmails": (BOOLEAN, False)},
            "query": {"sortAsTree": (BOOLEAN, False), "filterAsTree": (BOOLEAN, False)},
            "queryChanges": {"sortAsTree": (BOOLEAN, False), "filterAsTree": (BOOLEAN, False)},
        },
    )
)
