"""What the threading algorithm of the server guide ("Refs to Thread") keys a message on: its
RFC 5322 message ids and its subject with reply/forward prefixes and list tags stripped."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Prefixes mail clients add when replying or forwarding, in the languages seen most.
_KNOWN_PREFIXES = (
    "re|fw|fwd|aw|wg|sv|vs|vb|antw|doorst|tr|rif|r|i|enc|res|odp|pd|ynt|ilt|atb|fs|"
    "\u56de\u590d|\u56de\u8986|\u7b54\u590d|\u8f6c\u53d1|\u8f49\u5bc4|\u8f49\u767c|"
    "\u8fd4\u4fe1|\u8ee2\u9001"  # Chinese and Japanese: reply, forward
)
_COLON = ":\uff1a"  # with the full-width colon of CJK subjects
# At the start: a [tag], a known prefix (maybe counted: "Re[2]:") with or without space, or any
# one word followed by a colon and white space (the guide strips "all words followed by a colon").
_PREFIX = re.compile(
    rf"^\s*(?:\[[^\]]*\]"
    rf"|(?:{_KNOWN_PREFIXES})(?:\[\d+\]|\(\d+\)|\^\d+)?\s?[{_COLON}]"
    rf"|[^\s{_COLON}\[\]]+\s?[{_COLON}](?=\s|$))",
    re.I,
)
_TAG = re.compile(r"\[[^\]]*\]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ThreadingKeys:
    message_ids: tuple[str, ...]  # Message-ID, In-Reply-To, References; in order, no repeats
    subject: str  # normalised; "" when there is none


def threading_keys(ids: Iterable[list[str] | None], subject: str | None) -> ThreadingKeys:
    unique = dict.fromkeys(i for group in ids if group for i in group)
    return ThreadingKeys(tuple(unique), normalise_subject(subject or ""))


def normalise_subject(subject: str) -> str:
    """The base subject, case-folded: "Re: [dev] AW: Hello  World" → "hello world"."""
    return base_subject(subject).casefold()


def base_subject(subject: str) -> str:
    """Strip leading "Re:", "Fwd:", "AW:", "SV:", ... and [list] tags (repeatedly), drop [tags]
    elsewhere too, and collapse white space (RFC 5256 §2.1, as the server guide extends it):
    "Re: [dev] AW: Hello  World" → "Hello World"."""
    text = subject
    while (match := _PREFIX.match(text)) is not None:
        text = text[match.end() :]
    text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()
