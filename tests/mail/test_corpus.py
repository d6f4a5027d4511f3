"""The MIME corpus in tests/data/mail: each NAME.eml against the hand-written NAME.json beside it
(RFC 8621 §4.1.2-4.1.4). A part's headers and blobId are compared only where the JSON has them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jmapd.mail import Message, parse_message

CORPUS = Path(__file__).parent.parent / "data" / "mail"
NAMES = sorted(p.stem for p in CORPUS.glob("*.eml"))
WITH_THREADING_KEYS = [n for n in NAMES if '"threadingKeys"' in (CORPUS / f"{n}.json").read_text()]


def load(name: str) -> tuple[Message, dict[str, Any]]:
    raw = (CORPUS / f"{name}.eml").read_bytes()
    expected = json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))
    return parse_message(raw), expected


def project(part: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """`part` with only the keys `expected` spells out among headers and blobId."""
    out = {k: v for k, v in part.items() if k not in ("headers", "blobId") or k in expected}
    if part["subParts"] is not None and expected.get("subParts") is not None:
        given = expected["subParts"]
        out["subParts"] = [
            project(p, given[i]) if i < len(given) else p for i, p in enumerate(part["subParts"])
        ]
    return out


def header_property(message: Message, prop: str) -> Any:
    """header:{name}[:as{form}][:all] (§4.1.3)."""
    _, name, *suffixes = prop.split(":")
    all = suffixes[-1:] == ["all"]
    forms = [s[2:] for s in suffixes if s.startswith("as")]
    return message.header(name, forms[0] if forms else "Raw", all)


def test_corpus_is_complete() -> None:
    assert NAMES, "no corpus"
    for name in NAMES:
        assert (CORPUS / f"{name}.json").exists(), name
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < 200_000


@pytest.mark.parametrize("name", NAMES)
def test_headers(name: str) -> None:
    message, expected = load(name)
    if "headers" in expected:
        assert message.headers == expected["headers"]
    for prop, value in expected.get("header", {}).items():
        assert header_property(message, prop) == value, prop


@pytest.mark.parametrize("name", NAMES)
def test_properties(name: str) -> None:
    message, expected = load(name)
    assert message.properties() == expected["properties"]


@pytest.mark.parametrize("name", NAMES)
def test_body_structure(name: str) -> None:
    message, expected = load(name)
    assert project(message.body_structure(), expected["bodyStructure"]) == expected["bodyStructure"]


@pytest.mark.parametrize("name", NAMES)
def test_body_lists(name: str) -> None:
    message, expected = load(name)
    assert [p["partId"] for p in message.text_body()] == expected["textBody"]
    assert [p["partId"] for p in message.html_body()] == expected["htmlBody"]
    assert [p["partId"] for p in message.attachments()] == expected["attachments"]
    assert message.has_attachment() is expected["hasAttachment"]


@pytest.mark.parametrize("name", NAMES)
def test_preview(name: str) -> None:
    message, expected = load(name)
    assert message.preview() == expected["preview"]


@pytest.mark.parametrize("name", NAMES)
def test_body_values(name: str) -> None:
    message, expected = load(name)
    text_parts = [p["partId"] for p in leaves(message.body_structure()) if p["type"][:5] == "text/"]
    assert sorted(expected["bodyValues"], key=int) == text_parts
    for part_id, value in expected["bodyValues"].items():
        assert message.body_value(part_id) == value, part_id
    for part_id, content in expected.get("partContent", {}).items():
        assert message.part_content(part_id) == content.encode("utf-8"), part_id


@pytest.mark.parametrize("name", WITH_THREADING_KEYS)
def test_threading_keys(name: str) -> None:
    message, expected = load(name)
    keys = message.threading_keys()
    assert list(keys.message_ids) == expected["threadingKeys"]["messageIds"]
    assert keys.subject == expected["threadingKeys"]["subject"]


def leaves(part: dict[str, Any]) -> list[dict[str, Any]]:
    if part["subParts"] is None:
        return [part]
    return [leaf for sub in part["subParts"] for leaf in leaves(sub)]


@pytest.mark.parametrize("name", NAMES)
def test_every_part_is_read_back_from_its_span(name: str) -> None:
    """Each leaf's body lies verbatim in the message at its span, so a stored message's part
    values are read from the octets without parsing it again: the same value either way."""
    from jmapd.mail.params import parse_value
    from jmapd.mail.values import encoded_body_value

    raw = (CORPUS / f"{name}.eml").read_bytes()
    message = parse_message(raw)
    spans = message.spans()
    leaves = [p for p in message.attachments() + message.text_body() + message.html_body()]
    structure = message.body_structure()
    stack, all_leaves = [structure], []
    while stack:
        part = stack.pop()
        if part["subParts"] is None:
            all_leaves.append(part)
        else:
            stack += part["subParts"]
    assert {p["partId"] for p in all_leaves} == set(spans)
    for part in all_leaves + leaves:
        start, length = spans[part["partId"]]
        encoding = next((parse_value(h["value"])[0] for h in part["headers"]
                         if h["name"].lower() == "content-transfer-encoding"), "")  # fmt: skip
        value = encoded_body_value(raw[start : start + length], encoding or "", part["charset"],
                                   part["type"] == "text/html", None)  # fmt: skip
        assert value == message.body_value(part["partId"]), part["partId"]
