"""HTML to plain text, for previews and the search index (stdlib html.parser, no rendering)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never shown as text.
_HIDDEN = frozenset({"head", "script", "style", "title", "template", "svg", "object"})
# Elements rendered as paragraphs (a blank line around them) or as lines of their own.
_PARAGRAPHS = frozenset(
    {"blockquote", "dl", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre"}
    | {"table", "ul"}
)
_LINES = frozenset(
    {"address", "article", "aside", "dd", "div", "dt", "fieldset", "figcaption", "footer"}
    | {"form", "header", "li", "main", "nav", "section", "tr"}
)
_CELLS = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\r\n\f]+")  # HTML white space collapses to one space
_LINE_PADDING = re.compile(r" *\n *")
# Marked sections html.parser can read; any other "<![" makes it raise AssertionError (3.11).
_BAD_MARKED_SECTION = re.compile(
    r"<!\[(?!\s*(?:cdata|if|else|endif|temp|ignore|include|rcdata)(?![-_.a-z0-9]))", re.I
)


class _Text(HTMLParser):
    """Collects text; line breaks asked for by elements are merged and written before the next
    text, so "</li><li>" makes one line break and "</p><p>" one blank line."""

    def __init__(self, shown_attributes: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.shown_attributes = shown_attributes
        self.out: list[str] = []
        self._breaks = 0
        self._hidden: str | None = None
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._hidden == "head" and tag == "body":
            self._hidden = None  # a missing </head>: <body> ends it
        if self._hidden is None and tag in _HIDDEN:
            self._hidden = tag
        elif tag in _CELLS and self.out and not self._breaks:
            self.out.append(" ")
        self._pre += tag == "pre"
        self._block(tag)
        self._attributes(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._block(tag)
        self._attributes(attrs)

    def _attributes(self, attrs: list[tuple[str, str | None]]) -> None:
        # alt and title are text a reader is shown (RFC 8621 §4.4.1 asks search to see them).
        if self.shown_attributes and self._hidden is None:
            for name, value in attrs:
                if name in ("alt", "title") and value and value.strip():
                    self.handle_data(f" {value} ")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._hidden:
            self._hidden = None
        if tag == "pre" and self._pre:
            self._pre -= 1
        if tag != "br":
            self._block(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden is not None:
            return
        text = data if self._pre else _SPACES.sub(" ", data)
        if self._breaks and not text.strip():
            return
        if self._breaks and self.out:
            self.out.append("\n" * self._breaks)
        self._breaks = 0
        self.out.append(text)

    def _block(self, tag: str) -> None:
        if tag == "br":
            self._breaks = min(self._breaks + 1, 2)
        elif tag in _PARAGRAPHS:
            self._breaks = 2
        elif tag in _LINES:
            self._breaks = max(self._breaks, 1)


def html_to_text(html: str, limit: int | None = None, shown_attributes: bool = False) -> str:
    """The text of an HTML document: hidden elements dropped, entities decoded, white space
    collapsed as a browser would, block elements on their own lines; with shown_attributes
    (for search), alt and title attribute values too.

    html.parser runs at 1-3 MB/s and the Python 3.11 one has inputs that make it quadratic or
    raise; so only the first `limit` characters are read, and the source is defused first.
    """
    parser = _Text(shown_attributes)
    try:
        parser.feed(_defuse(html[:limit] if limit is not None else html))
        parser.close()
    except AssertionError:  # _markupbase's reaction to some malformed declarations: keep the text
        pass
    return _LINE_PADDING.sub("\n", "".join(parser.out)).strip()


def _defuse(html: str) -> str:
    # A "<" with no ">" after it makes html.parser rescan the rest of the source for each one
    # (quadratic); such a "<" is text anyway. Unreadable marked sections are text too.
    head, gt, tail = html.rpartition(">")
    return _BAD_MARKED_SECTION.sub("&lt;![", head + gt + tail.replace("<", "&lt;"))
