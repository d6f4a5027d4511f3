"""Text derived from the body: the preview (RFC 8621 §4.1.4) and the text to index for search."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from jmapd.mail.html import html_to_text
from jmapd.mail.mime import Part

PREVIEW_LENGTH = 256  # §4.1.4: "MUST NOT be more than 256 characters"
PREVIEW_TEXT_SOURCE = 65536  # characters of a part's text looked at for a preview
PREVIEW_HTML_SOURCE = 131072  # characters of HTML read for a preview (see html.html_to_text)
SEARCH_HTML_SOURCE = 1048576  # characters of each HTML part read for the search text
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")

P = TypeVar("P")
TextOf = Callable[[Part], str]  # a part's decoded text (bodyValues' value)


def preview(text_body: Iterable[Part], text_of: TextOf) -> str:
    """Up to 256 characters: the textBody text parts in order (HTML ones converted to text),
    white space and control characters collapsed to single spaces."""
    collected = ""
    for part in text_body:
        if part.type not in ("text/plain", "text/html"):
            continue
        text = text_of(part)
        if part.type == "text/html":
            text = html_to_text(text, PREVIEW_HTML_SOURCE)
        text = _start(text[:PREVIEW_TEXT_SOURCE])
        collected = _collapse(f"{collected} {text}")
        if len(collected) >= PREVIEW_LENGTH:
            break
    return collected[:PREVIEW_LENGTH].rstrip()


def _collapse(text: str) -> str:
    return _SPACE_OR_CONTROL.sub(" ", text).strip()


def _start(text: str) -> str:
    """As much of the start of a text as makes a whole preview once white space is collapsed
    (collapsing a start gives the start of the collapsed text): most of a long text is
    never looked at."""
    size = 4 * PREVIEW_LENGTH
    while size < len(text) and len(_collapse(text[:size])) <= PREVIEW_LENGTH:
        size *= 4
    return text[:size]


def search_text(
    parts: Iterable[P], text_of: Callable[[P], str], type_of: Callable[[P], str]
) -> str:
    """The text of every text/* part given, HTML converted (its first MB), one part per
    paragraph."""
    return "\n\n".join(search_texts(parts, text_of, type_of))


def search_texts(
    parts: Iterable[P], text_of: Callable[[P], str], type_of: Callable[[P], str]
) -> Iterator[str]:
    """search_text part by part, each read only when it is asked for."""
    for part in parts:
        if not type_of(part).startswith("text/"):
            continue
        text = text_of(part)
        if type_of(part) == "text/html":
            text = html_to_text(text, SEARCH_HTML_SOURCE, shown_attributes=True)
        if text.strip():
            yield text.strip()


def searched_parts(text_body: list[P], html_body: list[P], attachments: list[P]) -> list[P]:
    """What search reads: the text body, the HTML body where it is not the same part (an
    HTML alternative), and the attachments; each part once."""
    seen = {id(p) for p in text_body}
    return text_body + [p for p in html_body if id(p) not in seen] + attachments
