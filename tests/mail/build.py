"""Tiny builders for MIME test messages."""

from __future__ import annotations

from itertools import count

from jmapd.mail import Message, parse_message

_boundaries = count(1)


def leaf(content_type: str | None, body: str = "x", **headers: str) -> str:
    """An entity; keyword arguments are more header fields (Content_ID= → Content-ID:)."""
    fields = [f"Content-Type: {content_type}"] if content_type is not None else []
    fields += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "".join(f + "\r\n" for f in fields) + "\r\n" + body


def multi(subtype: str, *parts: str) -> str:
    boundary = f"b{next(_boundaries)}"
    out = f"Content-Type: multipart/{subtype}; boundary={boundary}\r\n\r\n"
    out += "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return out + f"--{boundary}--\r\n"


def parse(entity: str) -> Message:
    return parse_message(entity.encode("utf-8"))


def ids(parts: list[dict[str, object]]) -> list[object]:
    return [p["partId"] for p in parts]
