"""`jmapd contacts import` and `export`: vCard files in and out of an account, through the
same ContactCard/set every client uses (so each card is validated and indexed alike)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...config import Config
from ...protocol.registry import REGISTRY, Context, User
from ...store.base import Access, Account, BlobStore, Store
from . import CONTACTS
from .card import data_uri
from .vcard import VCardError, from_jscontact, read_vcards

Progress = Callable[[int, int], None]
Report = Callable[[int, str], None]  # line, reason


def _context(config: Config, store: Store, blobs: BlobStore, account: Account) -> Context:
    access = Access(account.id, account.name, is_personal=True, is_read_only=False)
    user = User(account.id, account.name, access={account.id: access})
    return Context(config, store, blobs, user, frozenset({CONTACTS}), REGISTRY)


def _book(ctx: Context, account: Account, name: str | None) -> str | None:
    """The id of the named address book (made if need be), or None for the default."""
    if name is None:
        return None
    with ctx.read(account.id) as txn:
        found = [id for id, b in txn.get("AddressBook", None).items() if b["name"] == name]
    if found:
        return found[0]
    out = REGISTRY.methods["AddressBook/set"].handler(
        ctx, {"accountId": account.id, "create": {"b": {"name": name}}}
    )
    assert isinstance(out, dict)
    if out["notCreated"]:
        raise ValueError(f"cannot make address book {name!r}: {out['notCreated']['b']}")
    return str(out["created"]["b"]["id"])


def _reason(error: dict[str, Any]) -> str:
    reason = error.get("description") or error["type"]
    if error.get("properties"):
        reason = f"{error['type']} {', '.join(error['properties'])}: {reason}"
    return str(reason)


def import_cards(
    config: Config, store: Store, blobs: BlobStore, account: Account, text: str,
    book_name: str | None, progress: Progress, report: Report,
) -> tuple[int, int]:  # fmt: skip
    """Import every vCard of a file; report each rejected one with its line. Returns
    (imported, rejected)."""
    ctx = _context(config, store, blobs, account)
    book = _book(ctx, account, book_name)
    parsed = list(read_vcards(text))
    batch_size = max(1, min(config.max_objects_in_set, 100))
    imported = rejected = 0
    for start in range(0, len(parsed), batch_size):
        create: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for line, card in parsed[start : start + batch_size]:
            if isinstance(card, VCardError):
                report(line, card.reason)
                rejected += 1
                continue
            if book is not None:
                card["addressBookIds"] = {book: True}
            key = f"l{line}"
            create[key], lines[key] = card, line
        if create:
            set_ = REGISTRY.methods["ContactCard/set"].handler
            out = set_(ctx, {"accountId": account.id, "create": create})
            assert isinstance(out, dict)
            for key, error in (out["notCreated"] or {}).items():
                report(lines[key], _reason(error))
                rejected += 1
            imported += len(out["created"] or {})
        progress(min(start + batch_size, len(parsed)), len(parsed))
    return imported, rejected


def export_cards(store: Store, blobs: BlobStore, account: Account) -> str:
    """Every card of the account as vCard 4.0; media kept as blobs go inline as data: URIs."""
    with store.read(account.id) as txn:
        cards = txn.get("ContactCard", None)

    def media(item: dict[str, Any]) -> str | None:
        if "blobId" in item:
            data = blobs.read(item["blobId"])
            if data is None:
                return None
            return data_uri(data, item.get("mediaType", "application/octet-stream"))
        uri = item.get("uri")
        return str(uri) if uri is not None else None

    return "".join(from_jscontact(cards[id], media) for id in sorted(cards))
