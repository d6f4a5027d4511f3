"""What a ContactCard gives the card index (store/cardindex.py): sort keys, members, books and
searchable terms; and how a filter's search string becomes terms (RFC 9610 §3.3.1)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from ...protocol.engine.query import COLLATIONS, collation_text
from ...protocol.values import utc_seconds
from ...store.cardindex import CardEntry

MAX_TERM = 64  # characters of a term kept, and of a search token compared
MAX_TERMS = 256  # terms of one value
SORTED_NAMES = ("given", "surname", "surname2")
COLLATION_CODES = {"i;unicode-casemap": "u", "i;ascii-casemap": "a", "i;ascii-numeric": "n"}
SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Case and accents folded, whitespace runs made one space: how terms and tokens compare."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return SPACE.sub(" ", bare.casefold()).strip()


def terms(text: str) -> set[str]:
    """The value from the start of each of its words on, each cut to MAX_TERM characters."""
    folded = fold(text)
    starts = [i for i, c in enumerate(folded)
              if i == 0 or (c.isalnum() and not folded[i - 1].isalnum())]  # fmt: skip
    return {folded[i : i + MAX_TERM] for i in starts[:MAX_TERMS]}


def digit_terms(number: str) -> set[str]:
    """A phone number's digits from each digit on: 5551234 finds +1 (555) 123-4."""
    digits = "".join(c for c in number if c.isdigit())[:MAX_TERM]
    return {digits[i:] for i in range(len(digits))}


def search_tokens(value: str) -> list[str]:
    """§3.3.1: whitespace divides tokens; text in single or double quotes is a phrase, in
    which \\" \\' and \\\\ stand for the character. Folded; empty ones dropped."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c.isspace():
            i += 1
            continue
        chars: list[str] = []
        if c in "\"'":
            quote, i = c, i + 1
            while i < n and value[i] != quote:
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            i += 1
        else:
            while i < n and not value[i].isspace():
                chars.append(value[i])
                i += 1
        token = fold("".join(chars))[:MAX_TERM]
        if token:
            out.append(token)
    return out


def text_condition(field: str | None, value: str) -> tuple[Any, ...]:
    return ("and", [("term", field, token) for token in search_tokens(value)])


def _values(card: dict[str, Any], prop: str, *keys: str) -> Iterator[str]:
    for item in (card.get(prop) or {}).values():
        for key in keys:
            if isinstance(item.get(key), str):
                yield item[key]


def _components(holder: Any, kinds: tuple[str, ...] | None = None) -> Iterator[str]:
    if not isinstance(holder, dict):
        return
    for c in holder.get("components") or []:
        if c.get("kind") != "separator" and (kinds is None or c.get("kind") in kinds):
            yield c["value"]
    if kinds is None and isinstance(holder.get("full"), str):
        yield holder["full"]


def card_fields(card: dict[str, Any]) -> dict[str, list[str]]:
    """field → the card's values the filter of that name matches (§3.3.1)."""
    name = card.get("name")
    addresses = [v for a in (card.get("addresses") or {}).values() for v in _components(a)]
    organizations = card.get("organizations") or {}
    return {
        "name": list(_components(name)),
        **{kind: list(_components(name, (kind,))) for kind in SORTED_NAMES},
        "nickname": list(_values(card, "nicknames", "name")),
        "organization": list(_values(card, "organizations", "name")),
        "email": list(_values(card, "emails", "address", "label")),
        "phone": list(_values(card, "phones", "number", "label")),
        "onlineService": list(_values(card, "onlineServices", "service", "uri", "user", "label")),
        "address": addresses,
        "note": list(_values(card, "notes", "note")),
        # found by `text` only
        "other": [
            *_values(card, "titles", "name"),
            *(u["name"] for o in organizations.values() for u in o.get("units") or []),
            *(card.get("keywords") or {}),
            *_values(card, "personalInfo", "value"),
        ],
    }


def _ms(value: Any) -> int:
    return int(utc_seconds(value) * 1000) if isinstance(value, str) else -1


def _first(card: dict[str, Any], kind: str) -> str | None:
    return next(_components(card.get("name"), (kind,)), None)


def card_entry(card: dict[str, Any]) -> CardEntry:
    sort_text = {}
    for kind in SORTED_NAMES:
        value = _first(card, kind)
        for collation, code in COLLATION_CODES.items():
            sort_text[f"{kind}_{code}"] = "" if value is None else collation_text(collation, value)
    found: dict[str, set[str]] = {}
    for field, values in card_fields(card).items():
        for value in values:
            found.setdefault(field, set()).update(terms(value))
    for number in _values(card, "phones", "number"):
        found.setdefault("phone", set()).update(digit_terms(number))
    return CardEntry(
        uid=card["uid"],
        kind=card.get("kind"),
        created=_ms(card.get("created")),
        updated=_ms(card.get("updated")),
        address_book_ids=sorted(card.get("addressBookIds") or {}),
        members=sorted(card.get("members") or {}),
        sort_text=sort_text,
        terms=found,
    )


assert set(COLLATION_CODES) == set(COLLATIONS)
