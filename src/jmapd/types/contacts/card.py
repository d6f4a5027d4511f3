"""ContactCard (RFC 9610 §3): a JSContact Card (RFC 9553) in one or more address books,
queried from the card index (store/cardindex.py)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from ...protocol.engine import ABSENT, DataType, Filter, Hooks, Property, register_type
from ...protocol.engine.query import Results, parse_sort, walk_filter
from ...protocol.errors import SetError, invalid_properties
from ...protocol.registry import Context
from ...protocol.values import ID_KIND, STRING, UTC_DATE_KIND, Kind, MapOf, Resolver, utc_seconds
from ...store.base import Transaction
from ...store.cardindex import CardQuery
from . import CONTACTS, MAX_ADDRESS_BOOKS_PER_CARD
from .index import COLLATION_CODES, card_entry, text_condition
from .jscontact import (
    CARD_PROPERTIES,
    TYPE_KIND,
    VERSION_KIND,
    CardValue,
    other_card_property,
)

TYPE = "ContactCard"
BOOK = "AddressBook"
# Magic numbers of the image types a photo may be (§3.5: others are rejected).
IMAGES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


class BooleanTrue(Kind):
    name = "true"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if value is not True:
            raise ValueError("must be true")
        return value


def now() -> str:
    """A UTCDateTime to the second: what a vCard REV or CREATED holds too (RFC 6350
    TIMESTAMP), so a card exported and imported again keeps it exactly."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_type(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "image/avif" if data[8:12] == b"avif" else "image/heic"
    return next((t for magic, t in IMAGES if data.startswith(magic)), None)


def decode_data_uri(uri: str) -> tuple[bytes, str] | None:
    """RFC 2397: the bytes and media type of a data: URI, or None if it is not one."""
    if uri[:5].lower() != "data:" or "," not in uri:
        return None
    head, _, body = uri[5:].partition(",")
    parts = head.split(";")
    try:
        data = base64.b64decode(body, validate=False) if parts[-1].lower() == "base64" \
            else unquote_to_bytes(body)  # fmt: skip
    except ValueError:
        return None
    return data, parts[0] or "text/plain"


def data_uri(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def _blob_ids(card: dict[str, Any]) -> set[str]:
    return {m["blobId"] for m in (card.get("media") or {}).values() if "blobId" in m}


def _media(ctx: Context, txn: Transaction, card: dict[str, Any], old: set[str]) -> None:
    """RFC 9610 §3: media given as data: URIs are kept as blobs (and shown by blobId); a
    blobId must be one the user may read, and a photo a recognised image."""
    if not card.get("media"):
        return
    media, missing, problems = {}, [], []
    copied = ctx.args.get("_copied_blobs", set())
    for key, item in card["media"].items():
        item = dict(item)
        decoded = decode_data_uri(item["uri"]) if "uri" in item and "blobId" not in item else None
        if decoded is not None:
            data, media_type = decoded
            blob_id = ctx.blobs.put(data)
            ctx.keep(blob_id, data)
            txn.add_upload(
                blob_id, len(data), ctx.user.account_id, datetime.now(UTC).timestamp() + 60
            )
            del item["uri"]
            item["blobId"] = blob_id
            item.setdefault("mediaType", media_type)
        given = item.get("blobId")
        if isinstance(given, str) and given not in old:
            blob_id = given
            if txn.blob_size(blob_id, ctx.user.account_id) is None and blob_id not in copied:
                missing.append(blob_id)
                continue
            found = image_type(ctx.blobs.read(blob_id) or b"")
            if item.get("kind") == "photo" and found is None:
                problems.append(f"media/{key}/blobId")
            if "mediaType" not in item:
                item["mediaType"] = found or "application/octet-stream"
        media[key] = item
    if missing:
        raise SetError("blobNotFound", "no such blob", notFound=sorted(set(missing)))
    if problems:
        raise invalid_properties("a photo must be a recognised image type", *problems)
    card["media"] = media


def _keep_blobs(ctx: Context, txn: Transaction, old: set[str], new: set[str]) -> None:
    for blob_id in new - old:
        size = txn.blob_size(blob_id, ctx.user.account_id)
        txn.keep_blob(blob_id, size if size is not None else len(ctx.blobs.read(blob_id) or b""))
    for blob_id in old - new:
        txn.release_blob(blob_id)


def _check_card(txn: Transaction, card: dict[str, Any], id: str) -> None:
    """What the property kinds cannot see: address books that exist, members only in a
    group, a uid unique in the account (RFC 9610 §3)."""
    problems: dict[str, str] = {}
    books = card.get("addressBookIds") or {}
    if not books:
        problems["addressBookIds"] = "a card must be in at least one AddressBook"
    elif len(books) > MAX_ADDRESS_BOOKS_PER_CARD:
        problems["addressBookIds"] = (
            f"more than maxAddressBooksPerCard {MAX_ADDRESS_BOOKS_PER_CARD}"
        )
    else:
        existing = txn.get(BOOK, list(books))
        unknown = [b for b in books if b not in existing]
        if unknown:
            problems["addressBookIds"] = f"no AddressBook {', '.join(unknown)}"
    if "members" in card and card.get("kind") != "group":
        problems["members"] = 'is only set when kind is "group" (RFC 9553 §2.1.6)'
    if problems:
        raise invalid_properties("; ".join(f"{k} {v}" for k, v in problems.items()), *problems)
    other = txn.card_by_uid(card["uid"])
    if other is not None and other != id:
        raise SetError("alreadyExists", "a card with this uid exists", ["uid"], existingId=other)


class CardHooks(Hooks):
    def blobs(self, record: dict[str, Any]) -> Iterable[str]:
        return _blob_ids(record)

    def create(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        from .address_book import default_book

        if "addressBookIds" not in record:
            book = default_book(txn)
            record["addressBookIds"] = {book: True} if book else {}
        record.setdefault("uid", f"urn:uuid:{uuid.uuid4()}")
        stamp = now()
        record.setdefault("created", stamp)
        record.setdefault("updated", stamp)
        record["id"] = id = txn.new_id()
        _check_card(txn, record, id)
        _media(ctx, txn, record, set())
        _keep_blobs(ctx, txn, set(), _blob_ids(record))
        txn.index_card(id, card_entry(record))

    def update(
        self, ctx: Context, txn: Transaction, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        if new.get("updated") == old.get("updated"):
            new["updated"] = now()
        if "uid" not in new:
            raise invalid_properties("uid is mandatory in a Card", "uid")
        _check_card(txn, new, old["id"])
        before = _blob_ids(old)
        _media(ctx, txn, new, before)
        _keep_blobs(ctx, txn, before, _blob_ids(new))
        txn.index_card(old["id"], card_entry(new))

    def destroy(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        _keep_blobs(ctx, txn, _blob_ids(record), set())
        txn.unindex_card(record["id"])

    def copy_record(
        self, ctx: Context, txn: Transaction, original: dict[str, Any],
        overrides: dict[str, Any], prepared: Any = None,
    ) -> dict[str, Any] | None:  # fmt: skip
        # The original's blobs are the user's to read (they may read that account): the
        # copy references them in this one. The generic copy does the rest.
        ctx.args["_copied_blobs"] = _blob_ids(original)
        return None

    def query(self, ctx: Context, txn: Transaction, filter: Any, sort: Any) -> Results | None:
        condition = None
        if filter is not None:
            condition = walk_filter(CARD, filter, lambda f, v: f.index(v),
                                    lambda op, parts: (op.lower(), parts))  # fmt: skip
        keys = []
        for c in parse_sort(CARD, sort):
            key = CARD.sorts[c.property]
            if key in SORTED_NAMES_KEYS:
                key = f"{key}_{COLLATION_CODES[c.collation]}"
            keys.append((key, c.is_ascending))
        return txn.query_cards(CardQuery(condition, keys))


SORTED_NAMES_KEYS = ("given", "surname", "surname2")


def remove_from_book(ctx: Context, txn: Transaction, card_id: str, book_id: str) -> None:
    """RFC 9610 §2.3 onDestroyRemoveContents: the card leaves the book; in no other, it is
    destroyed."""
    card = txn.get(TYPE, [card_id]).get(card_id)
    if card is None:
        return
    card["id"] = card_id
    books = {b: True for b in card.get("addressBookIds") or {} if b != book_id}
    if not books:
        CARD.hooks.destroy(ctx, txn, card)
        txn.destroy(TYPE, card_id)
        return
    card["addressBookIds"] = books
    card["updated"] = now()
    txn.index_card(card_id, card_entry(card))
    del card["id"]
    txn.put(TYPE, card_id, card)


def _ms(value: str) -> int:
    return int(utc_seconds(value) * 1000)


def _text(field: str | None) -> Filter:
    return Filter(STRING, index=lambda value: text_condition(field, value))


CARD = register_type(
    DataType(
        TYPE,
        CONTACTS,
        (
            Property("@type", TYPE_KIND, default="Card"),
            Property("version", VERSION_KIND, default="1.0"),
            Property("addressBookIds", MapOf(ID_KIND, BooleanTrue()), default=ABSENT),
            *(Property(name, CardValue(name), default=ABSENT) for name in CARD_PROPERTIES),
        ),
        filters={
            "inAddressBook": Filter(ID_KIND, index=lambda v: ("book", v)),
            "uid": Filter(STRING, index=lambda v: ("uid", v)),
            "hasMember": Filter(STRING, index=lambda v: ("member", v)),
            "kind": Filter(STRING, index=lambda v: ("kind", v)),
            "createdBefore": Filter(UTC_DATE_KIND, index=lambda v: ("created_before", _ms(v))),
            "createdAfter": Filter(UTC_DATE_KIND, index=lambda v: ("created_after", _ms(v))),
            "updatedBefore": Filter(UTC_DATE_KIND, index=lambda v: ("updated_before", _ms(v))),
            "updatedAfter": Filter(UTC_DATE_KIND, index=lambda v: ("updated_after", _ms(v))),
            "text": _text(None),
            "name": _text("name"),
            "name/given": _text("given"),
            "name/surname": _text("surname"),
            "name/surname2": _text("surname2"),
            "nickname": _text("nickname"),
            "organization": _text("organization"),
            "email": _text("email"),
            "phone": _text("phone"),
            "onlineService": _text("onlineService"),
            "address": _text("address"),
            "note": _text("note"),
        },
        sorts={
            "created": "created",
            "updated": "updated",
            "name/given": "given",
            "name/surname": "surname",
            "name/surname2": "surname2",
        },
        hooks=CardHooks(),
        other_property=other_card_property,
    )
)
