"""Structured MIME header values: `value; name=param; ...` (RFC 2045 §5.1, RFC 2183, RFC 2231)."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from jmapd.mail import charsets

# A quoted string (unterminated runs to the end), a comment, a separator, or anything else.
_TOKEN = re.compile(
    r'"(?P<quoted>(?:[^"\\]|\\.)*)(?:"|\\?\Z)'
    r"|(?P<comment>\((?:[^()\\]|\\.)*\))"
    r"|(?P<semi>;)"
    r'|(?P<plain>[^";(]+|\()',
    re.S,
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_SECTION = re.compile(r"(?P<name>[^*]+)\*(?P<index>[0-9]+)?(?P<star>\*)?")
_WHITESPACE = re.compile(r"\s+")

Segment = list[tuple[bool, str]]  # (was quoted, text)


def parse_value(raw: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type/Content-Disposition style value into its lowercased first token (CFWS
    removed) and its decoded parameters (names lowercased; RFC 2231 sections joined and decoded).

    Best effort and never raises: a parameter without "=" is dropped, the first of duplicates wins.
    """
    segments = _segments(raw)
    value = "".join(text for _, text in segments[0])
    params: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for segment in segments[1:]:
        pair = _split_param(segment)
        if pair is None:
            continue
        name, param = pair
        match = _SECTION.fullmatch(name)
        if match is None:
            params.setdefault(name, param)
            continue
        # `name*` is one extended value; `name*N` a section, `name*N*` an extended section.
        index = int(match["index"]) if match["index"] is not None else 0
        extended = match["index"] is None or bool(match["star"])
        sections.setdefault(match["name"], {}).setdefault(index, (param, extended))
    for name, parts in sections.items():
        params[name] = _join_sections(parts)  # RFC 2231 §4: wins over a plain parameter
    return _WHITESPACE.sub("", value).lower(), params


def _segments(raw: str) -> list[Segment]:
    segments: list[Segment] = [[]]
    for match in _TOKEN.finditer(raw.replace("\r", "").replace("\n", "")):
        if match["semi"]:
            segments.append([])
        elif match["quoted"] is not None:
            segments[-1].append((True, _QUOTED_PAIR.sub(r"\1", match["quoted"])))
        elif match["plain"] is not None:
            segments[-1].append((False, match["plain"]))
    return segments


def _split_param(segment: Segment) -> tuple[str, str] | None:
    for i, (quoted, text) in enumerate(segment):
        if quoted or "=" not in text:
            continue
        before = "".join(t for _, t in segment[:i]) + text.split("=", 1)[0]
        rest = [(False, text.split("=", 1)[1]), *segment[i + 1 :]]
        value = "".join(t if q else t.strip() for q, t in rest)
        name = _WHITESPACE.sub("", before).lower()
        return (name, value) if name else None
    return None


def _join_sections(parts: dict[int, tuple[str, bool]]) -> str:
    """RFC 2231 §3-4: sections in order; `*` sections are charset'language'%-encoded octets."""
    ordered = [parts[i] for i in sorted(parts)]
    charset: str | None = None
    octets = bytearray()
    for i, (text, extended) in enumerate(ordered):
        if extended and i == 0 and text.count("'") >= 2:
            charset, _, text = text.split("'", 2)
        octets += unquote_to_bytes(text) if extended else text.encode("utf-8")
    return charsets.decode(bytes(octets), charset or None)[0]
