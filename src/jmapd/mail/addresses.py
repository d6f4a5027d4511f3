"""The Addresses and GroupedAddresses forms (RFC 8621 §4.1.2.3-4): RFC 5322 §3.4 address-lists,
parsed best effort so that drafts and broken mail still yield something useful."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from jmapd.mail import encoded_words
from jmapd.mail.lexer import Token, tokens

_ROUTE = re.compile(r"^(?:@[^:]*:)?")  # obs-route (RFC 5322 §4.4): "<@a,@b:user@host>"
_SPACE = re.compile(r"\s+")

EmailAddress = dict[str, Any]  # {"name": str | None, "email": str}
EmailAddressGroup = dict[str, Any]  # {"name": str | None, "addresses": [EmailAddress]}


@dataclass
class _Mailbox:
    """The tokens of the mailbox being read, until "," or ";" ends it."""

    phrase: list[Token] = field(default_factory=list)
    angle: str | None = None
    comment: str | None = None  # the first comment after the address

    def take(self, token: Token) -> None:
        if token.kind == "angle" and self.angle is None:
            self.angle = token.text
        elif token.kind == "comment":
            if self.comment is None and (self.angle is not None or _has_words(self.phrase)):
                self.comment = token.text
        elif self.angle is None and (token.kind != "space" or self.phrase):
            self.phrase.append(token)

    def address(self) -> EmailAddress | None:
        if self.angle is not None:
            email = _addr_spec(tokens(_ROUTE.sub("", self.angle.lstrip())))
            return {"name": display_name(self.phrase) or self._comment_name(), "email": email}
        if not _has_words(self.phrase):
            return None
        return {"name": self._comment_name(), "email": _addr_spec(self.phrase)}

    def _comment_name(self) -> str | None:
        # RFC 8621 §4.1.2.3: no display-name, but a comment right after the addr-spec: use it.
        if self.comment is None:
            return None
        return _clean(encoded_words.decode_unstructured(_SPACE.sub(" ", self.comment))) or None


@dataclass
class _Group:
    name: str | None
    addresses: list[EmailAddress] = field(default_factory=list)


def grouped_addresses(value: str) -> list[EmailAddressGroup]:
    """GroupedAddresses form; mailboxes outside any group are collected under name null."""
    groups: list[_Group] = []
    in_group = False
    mailbox = _Mailbox()

    def flush() -> None:
        nonlocal mailbox
        address = mailbox.address()
        if address is not None:
            if not groups or (groups[-1].name is not None and not in_group):
                groups.append(_Group(None))
            groups[-1].addresses.append(address)
        mailbox = _Mailbox()

    for token in tokens(value):
        if token.kind != "special":
            mailbox.take(token)
        elif token.text == ":" and mailbox.angle is None:
            groups.append(_Group(display_name(mailbox.phrase)))
            mailbox, in_group = _Mailbox(), True
        elif token.text == ";" and in_group:
            flush()
            in_group = False
        elif token.text in ",;":
            flush()
    flush()
    return [{"name": g.name, "addresses": g.addresses} for g in groups]


def addresses(value: str) -> list[EmailAddress]:
    """Addresses form: every mailbox, group information discarded."""
    return [a for group in grouped_addresses(value) for a in group["addresses"]]


def display_name(phrase: list[Token]) -> str | None:
    """A display-name as RFC 8621 §4.1.2.3 wants it: quoted strings unquoted, encoded words in
    atoms decoded (not inside quoted strings: RFC 2047 §5(3)), trimmed, NFC; null if empty."""
    pieces: list[encoded_words.Piece] = []
    for token in phrase:
        if token.kind == "space" or token.kind == "comment":
            if pieces and pieces[-1] != " ":
                pieces.append(" ")
        elif token.kind == "atom":
            pieces.append(encoded_words.to_piece(token.text))
        else:
            pieces.append(_SPACE.sub(" ", token.text.replace("\r\n", "").replace("\n", "")))
    return _clean(encoded_words.join_pieces(pieces)) or None


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def _has_words(phrase: list[Token]) -> bool:
    return any(t.kind != "space" for t in phrase)


def _addr_spec(addr: list[Token]) -> str:
    # An addr-spec with its CFWS removed (RFC 5322 §3.4.1, §4.4); quoted local parts stay quoted.
    return "".join(_addr_text(t) for t in addr if t.kind not in ("space", "comment"))


def _addr_text(token: Token) -> str:
    if token.kind == "quoted":
        return '"' + token.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return token.text
