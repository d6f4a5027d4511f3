"""Tokens of RFC 5322 structured header fields (§3.2), for the address, msg-id and URL forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

Kind = Literal["space", "quoted", "comment", "angle", "literal", "special", "atom"]

_TOKEN = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r'|"(?P<quoted>(?:[^"\\]|\\.)*)(?:"|\\?\Z)'  # an unterminated quoted string runs to the end
    r"|<(?P<angle>[^>]*)>?"
    r"|(?P<literal>\[(?:[^\]\\]|\\.)*(?:\]|\\?\Z))"
    r"|(?P<comment>\()"
    r"|(?P<special>[,:;])"
    r'|(?P<atom>[^ \t\r\n"(),:;<\[]+|.)',
    re.S,
)
_COMMENT_STOP = re.compile(r"[()\\]")
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # quoted strings and comments: their content, quoted-pairs undone


def tokens(value: str) -> list[Token]:
    """Split a header value (unfolded or not) into tokens; never fails on malformed input."""
    out: list[Token] = []
    pos, end, match_at = 0, len(value), _TOKEN.match
    while pos < end:
        match = match_at(value, pos)
        assert match is not None  # the last alternative matches any character
        kind = match.lastgroup
        if kind == "comment":
            pos = _comment_end(value, match.end())
            out.append(Token("comment", _unquote(value[match.end() : pos - 1])))
            continue
        text = match[kind] if kind else match[0]
        out.append(Token(cast(Kind, kind), _unquote(text) if kind == "quoted" else text))
        pos = match.end()
    return out


def _unquote(text: str) -> str:
    return _QUOTED_PAIR.sub(r"\1", text) if "\\" in text else text


def _comment_end(value: str, pos: int) -> int:
    """Index just past the ")" closing a comment opened before `pos` (comments nest, §3.2.2)."""
    depth = 1
    while depth:
        match = _COMMENT_STOP.search(value, pos)
        if match is None:
            return len(value) + 1  # unterminated: the comment runs to the end
        pos = match.end() + (1 if match[0] == "\\" else 0)
        depth += {"(": 1, ")": -1}.get(match[0], 0)
    return pos


def without_comments(value: str) -> str:
    """The value with its comments replaced by a space (for dates and other simple forms)."""
    if "(" not in value:
        return value
    return "".join(" " if t.kind == "comment" else _source(t) for t in tokens(value))


def _source(token: Token) -> str:
    if token.kind == "quoted":
        return '"' + token.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if token.kind == "angle":
        return "<" + token.text + ">"
    return token.text
