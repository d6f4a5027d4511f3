"""Words for full-text search: how text is cut into words for the index, how a JMAP search
string (RFC 8621 §4.4.1) becomes terms, and how matches are marked in a snippet (§5).

Both database backends index the words made here, so they match alike: a word is a run of
letters and digits, Unicode case-folded, with diacritics removed ("École" → "ecole"); every
Chinese or Japanese ideograph or kana is a word of its own, as those scripts put no spaces
between words.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

_CJK = "\u2e80-\u2fdf\u3040-\u30ff\u3190-\u319f\u31c0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
MIN_PREFIX = 3
# Longer words are cut (a tracking URL's token, unbroken base64): any backend indexes them, and
# indexed text, searches and snippets all cut alike, so a search for the whole word finds it.
MAX_WORD = 100
# In ASCII text: a word cut to MAX_WORD characters, the rest of it matched and dropped.
_ASCII_WORD = re.compile(rf"([^\W_]{{1,{MAX_WORD}}})[^\W_]*")
SNIPPET_OCTETS = 255  # §5: a preview "MUST NOT be bigger than 255 octets"


@functools.lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """A word as indexed: case-folded, without combining marks (diacritics), composed again
    (so Hangul syllables stay whole)."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare)


def _spans(text: str, at: int = 0) -> Iterator[tuple[int, int, str]]:
    """(start, end, folded word) for every word of the text (from `at`). Folding can turn one
    character into several (e.g. "ß" → "ss") or split a ligature, so each match is folded
    and re-cut."""
    for match in _WORD.finditer(text, at):
        for word in _WORD.findall(fold(match.group()[: 2 * MAX_WORD])):
            yield match.start(), match.end(), word[:MAX_WORD]


def words(text: str) -> list[str]:
    """The folded words of a text, in order: the words of `_spans`, made faster for what most
    mail is, ASCII, whose words fold to themselves in lower case (indexing a message is
    mostly this)."""
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    found: list[str] = []
    for token in _WORD.findall(text):
        if token.isascii():
            found.append(token.lower()[:MAX_WORD])
        else:
            found.extend(word[:MAX_WORD] for word in _WORD.findall(fold(token[: 2 * MAX_WORD])))
    return found


@dataclass(frozen=True)
class Term:
    """Words that must appear next to each other in this order (one word, or a phrase); the
    last may match as a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


def parse_query(text: str) -> list[Term]:
    """§4.4.1: white space separates tokens, which must all match; text in single or double
    quotes is a phrase, in which a backslash escapes ' " and \\. An unclosed quote runs to
    the end. Every token is cut into words like indexed text (so "joe@example.com" is the
    phrase "joe example com"); the last token, when not quoted and of at least MIN_PREFIX
    characters, matches as a prefix too (shorter prefixes match nearly every message).
    Whatever the text holds, it is only ever words: no database syntax gets through."""
    tokens: list[tuple[str, bool]] = []  # (text, quoted)
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "'\"":
            quote, i, chars = char, i + 1, []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n and text[i + 1] in "'\"\\":
                    i += 1
                chars.append(text[i])
                i += 1
            tokens.append(("".join(chars), True))
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in "'\"":
                i += 1
            tokens.append((text[start:i], False))
    terms = [(tuple(words(token)), quoted) for token, quoted in tokens]
    kept = [(w, quoted) for w, quoted in terms if w]
    return [
        Term(w, prefix=not quoted and index == len(kept) - 1 and len(w[-1]) >= MIN_PREFIX)
        for index, (w, quoted) in enumerate(kept)
    ]


def _matches(term: Term, words: list[str]) -> bool:
    """Whether the words (as many as the term has) are the term."""
    last = words[-1] == term.words[-1] or (term.prefix and words[-1].startswith(term.words[-1]))
    return last and words[:-1] == list(term.words[:-1])


def _first_match(text: str, terms: list[Term]) -> int | None:
    """Where a match of a term starts (the first one, or one found sooner): word by word
    from the first place a term's first word appears as it is written, else from the
    start (the text may hold it only with other diacritics)."""
    hints = [m.start() for t in terms if (m := re.search(re.escape(t.words[0]), text, re.I))]
    if hints:
        at = text.rfind(" ", 0, min(hints)) + 1  # the text's white space is single spaces
        found = _walk(text, terms, at)
        if found is not None:
            return found
    elif text.isascii():
        # An ASCII word folds to itself in lower case: had a term matched, its first word
        # would have been found as written. Only other scripts need the walk from the start.
        return None
    return _walk(text, terms, 0)


def _walk(text: str, terms: list[Term], at: int) -> int | None:
    """Where the first match after `at` starts, reading no further than it."""
    recent: deque[tuple[int, int, str]] = deque(maxlen=max(len(t.words) for t in terms))
    for span in _spans(text, at):
        recent.append(span)
        for term in terms:
            size = len(term.words)
            if size <= len(recent) and _matches(term, [w for _, _, w in recent][-size:]):
                return recent[-size][0]
    return None


def _marked_spans(text: str, terms: list[Term]) -> list[tuple[int, int]]:
    """Where the terms match in the text: (start, end) character spans, in order."""
    spans = list(_spans(text))
    found: list[tuple[int, int]] = []
    for term in terms:
        size = len(term.words)
        for i in range(len(spans) - size + 1):
            if _matches(term, [w for _, _, w in spans[i : i + size]]):
                found.append((spans[i][0], spans[i + size - 1][1]))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _marked(text: str, spans: list[tuple[int, int]]) -> str:
    out, at = [], 0
    for start, end in spans:
        out += [html.escape(text[at:start], quote=False), "<mark>"]
        out += [html.escape(text[start:end], quote=False), "</mark>"]
        at = end
    out.append(html.escape(text[at:], quote=False))
    return "".join(out)


def highlight(text: str, terms: list[Term]) -> str | None:
    """The text HTML-escaped with every match in <mark></mark>, or None if none matches."""
    spans = _marked_spans(text, terms)
    return _marked(text, spans) if spans else None


def snippet(text: str, terms: list[Term], octets: int = SNIPPET_OCTETS) -> str | None:
    """A section of the text around its first match, escaped and marked like `highlight`, at
    most `octets` long in UTF-8; None if nothing matches. Only the section is marked, so a
    long text costs little beyond finding the first match."""
    if not terms:
        return None
    # Most often a term is in the text as written: then only the stretch around where it
    # first is needs its white space made single and its words read, not the whole text.
    hints = [m.start() for t in terms if (m := re.search(re.escape(t.words[0]), text, re.I))]
    if hints and len(text) > 8 * octets:
        near = min(hints)
        found = _snippet(" ".join(text[max(0, near - 2 * octets) : near + 4 * octets].split()),
                         terms, octets)  # fmt: skip
        if found is not None:
            return found
    return _snippet(" ".join(text.split()), terms, octets)


def _snippet(text: str, terms: list[Term], octets: int) -> str | None:
    first = _first_match(text, terms)
    if first is None:
        return None
    # Start a few words before the match, so it is seen in context.
    if first <= 40:
        start = 0
    else:  # from the first whole word of the 40 characters before
        space = text.find(" ", first - 40, first)
        start = space + 1 if space >= 0 else first - 40
    section = text[start : start + octets + 40]  # a character is at least one octet
    spans = _marked_spans(section, terms)
    end = len(section)
    while True:
        inside = [(s, min(e, end)) for s, e in spans if s < end]
        result = _marked(section[:end], [(s, e) for s, e in inside if s < e])
        if len(result.encode()) <= octets:
            return result
        # Too long: cut at the last space that brings it under, or by characters.
        over = len(result.encode()) - octets
        cut = section.rfind(" ", 0, max(1, end - max(1, over // 4)))
        end = cut if cut > 0 else end - max(1, over // 4)
