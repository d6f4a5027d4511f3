"""AddressBook (RFC 9610 §2)."""

from __future__ import annotations

from typing import Any

from ...protocol.engine import DataType, Hooks, Property, register_type
from ...protocol.errors import SetError
from ...protocol.registry import Context
from ...protocol.values import BOOLEAN, ID_KIND, OBJECT, STRING, MapOf, Nullable
from ...store.base import Transaction
from ..mailbox import MailboxName, SortOrder
from . import CONTACTS
from .card import remove_from_book

DEFAULT_NAME = "Personal"
RIGHTS = ("mayRead", "mayWrite", "mayShare", "mayDelete")
TYPE = "AddressBook"


def _rights(ctx: Context, txn: Transaction, record: dict[str, Any]) -> dict[str, bool]:
    writable = not ctx.user.access[txn.account_id].is_read_only
    # No sharing (RFC 9670) here: mayShare is false. The default book is not deleted (it
    # stays the one a client puts new cards in), as in RFC 9610 §4.1.
    return {
        "mayRead": True,
        "mayWrite": writable,
        "mayShare": False,
        "mayDelete": writable and not record.get("isDefault"),
    }


def _no_sharing(record: dict[str, Any]) -> None:
    if record.get("shareWith") is not None:
        raise SetError("forbidden", "this server does not share address books (RFC 9670)",
                       ["shareWith"])  # fmt: skip


class AddressBookHooks(Hooks):
    def present(self, ctx: Context, txn: Transaction, records: dict[str, Any]) -> None:
        for record in records.values():
            record["myRights"] = _rights(ctx, txn, record)

    def create(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        _no_sharing(record)
        record["isDefault"] = False

    def update(
        self, ctx: Context, txn: Transaction, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        if new.get("shareWith") != old.get("shareWith"):
            _no_sharing(new)

    def destroy(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        if record.get("isDefault"):
            raise SetError("forbidden", "the default address book cannot be destroyed; "
                           "make another the default first (onSuccessSetIsDefault)")  # fmt: skip
        cards = txn.cards_in_book(record["id"])
        if cards and not ctx.args.get("onDestroyRemoveContents"):
            raise SetError("addressBookHasContents", f"the address book holds {len(cards)} cards")
        for card_id in cards:  # §2.3: out of this book; destroyed when in no other
            remove_from_book(ctx, txn, card_id, record["id"])

    def finish_set(self, ctx: Context, txn: Transaction, result: dict[str, Any]) -> None:
        """§2.3 onSuccessSetIsDefault: only when every create, update and destroy succeeded;
        an id not found is ignored, and the books changed are reported."""
        wanted = ctx.args.get("onSuccessSetIsDefault")
        if wanted is None or any(result[k] for k in ("notCreated", "notUpdated", "notDestroyed")):
            return
        creation = wanted[1:] if wanted.startswith("#") else None
        id = ctx.created_ids.get(creation) if creation is not None else wanted
        books = txn.get(TYPE, None)
        if id not in books or books[id].get("isDefault"):
            return
        for book_id, book in books.items():
            if book.get("isDefault") or book_id == id:
                is_default = book_id == id
                txn.put(TYPE, book_id, {**book, "isDefault": is_default})
                if creation is not None and book_id == id:
                    result["created"][creation]["isDefault"] = True
                    continue
                updated = result["updated"] = result["updated"] or {}
                updated[book_id] = {**(updated.get(book_id) or {}), "isDefault": is_default}

    def provision(self, txn: Transaction, addresses: list[str]) -> None:
        if txn.get(TYPE, None):
            return
        txn.put(TYPE, txn.new_id(), {
            "name": DEFAULT_NAME, "description": None, "sortOrder": 0, "isDefault": True,
            "isSubscribed": True, "shareWith": None,
        })  # fmt: skip


def default_book(txn: Transaction) -> str | None:
    """The account's default address book (what a card given no addressBookIds goes in)."""
    return next((id for id, b in txn.get(TYPE, None).items() if b.get("isDefault")), None)


RIGHTS_KIND = MapOf(STRING, BOOLEAN)

ADDRESS_BOOK = register_type(
    DataType(
        TYPE,
        CONTACTS,
        (
            Property("name", MailboxName()),
            Property("description", Nullable(STRING), default=None),
            Property("sortOrder", SortOrder(), default=0),
            Property("isDefault", BOOLEAN, server_set=True),
            Property("isSubscribed", BOOLEAN, default=True),
            Property("shareWith", Nullable(MapOf(ID_KIND, RIGHTS_KIND)), default=None),
            Property("myRights", OBJECT, server_set=True),
        ),
        methods=("get", "changes", "set"),
        hooks=AddressBookHooks(),
        extra_args={
            "set": {
                "onDestroyRemoveContents": (BOOLEAN, False),
                # Kept as given: "#creationId" is resolved once the creates are made.
                "onSuccessSetIsDefault": (Nullable(STRING), None),
            }
        },
    )
)
