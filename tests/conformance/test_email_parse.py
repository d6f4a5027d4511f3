"""RFC 8621 §4.9 Email/parse over real HTTP: every message of the corpus (tests/data/mail)
uploaded, parsed and compared with the expected JSON written from the RFC; part blobs
download their decoded content; §4.2 arguments and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client

CORPUS = Path(__file__).parent.parent / "data" / "mail"
NAMES = sorted(p.stem for p in CORPUS.glob("*.eml"))
STRUCTURE = ["partId", "size", "name", "type", "charset", "disposition", "cid", "language",
             "location", "subParts"]  # fmt: skip
CONVENIENCE = ["messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc",
               "replyTo", "subject", "sentAt"]  # fmt: skip


def upload(client: Client, account_id: str, data: bytes) -> str:
    url = client.session()["uploadUrl"].replace("{accountId}", account_id)
    r = client.http.post(url, content=data, headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 201, r.text
    return str(r.json()["blobId"])


def parse(client: Client, account_id: str, blob_ids: list[str], **args: Any) -> list[Any]:
    return client.call("Email/parse", {"accountId": account_id, "blobIds": blob_ids, **args})


def download(client: Client, account_id: str, blob_id: str) -> bytes:
    url = client.session()["downloadUrl"]
    for var, value in {"accountId": account_id, "blobId": blob_id, "name": "part",
                       "type": "application/octet-stream"}.items():  # fmt: skip
        url = url.replace("{" + var + "}", value)
    r = client.http.get(url)
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("name", NAMES)
def test_corpus_message(alice: Client, ids: dict[str, str], name: str) -> None:
    expected = json.loads((CORPUS / f"{name}.json").read_text())
    raw = (CORPUS / f"{name}.eml").read_bytes()
    account = ids["alice"]
    blob_id = upload(alice, account, raw)
    headers = list(expected.get("header", {}))
    rname, result = parse(
        alice, account, [blob_id],
        properties=[*CONVENIENCE, "bodyStructure", "textBody", "htmlBody", "attachments",
                    "hasAttachment", "preview", "bodyValues", "id", "mailboxIds", "keywords",
                    "receivedAt", "threadId", "blobId", "size", *headers],
        bodyProperties=[*STRUCTURE, "blobId", "headers"],
        fetchAllBodyValues=True,
    )  # fmt: skip
    assert rname == "Email/parse", result
    assert result["notFound"] is None and result["notParsable"] is None
    email = result["parsed"][blob_id]
    assert {k: email[k] for k in CONVENIENCE} == expected["properties"]
    for prop in ("id", "mailboxIds", "keywords", "receivedAt", "threadId"):
        assert email[prop] is None  # §4.9
    assert (email["blobId"], email["size"]) == (blob_id, len(raw))
    assert email["hasAttachment"] == expected["hasAttachment"]
    assert email["preview"] == expected["preview"]
    for prop in ("textBody", "htmlBody", "attachments"):
        assert [p["partId"] for p in email[prop]] == expected[prop], prop
    assert like(email["bodyStructure"], expected["bodyStructure"]) == expected["bodyStructure"]
    for part_id, value in expected["bodyValues"].items():
        assert email["bodyValues"][part_id] == value, part_id
    for prop, value in expected.get("header", {}).items():
        assert email[prop] == value, prop
    parts = {p["partId"]: p for p in leaves(email["bodyStructure"])}
    for part_id, content in expected.get("partContent", {}).items():
        assert download(alice, account, parts[part_id]["blobId"]) == content.encode()


def like(part: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The part with the properties the expectation names (the corpus leaves out blobIds, and
    the headers of the message itself), recursively."""
    out = {k: part.get(k, "<missing>") for k in expected}
    if expected.get("subParts") is not None and part.get("subParts") is not None:
        out["subParts"] = [
            like(p, e) for p, e in zip(part["subParts"], expected["subParts"], strict=False)
        ]
        out["subParts"] += part["subParts"][len(expected["subParts"]) :]
    return out


def leaves(part: dict[str, Any]) -> list[dict[str, Any]]:
    if part["subParts"] is None:
        return [part]
    return [leaf for sub in part["subParts"] for leaf in leaves(sub)]


def test_defaults_and_truncation(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    blob_id = upload(alice, account, (CORPUS / "alternative.eml").read_bytes())
    _, result = parse(alice, account, [blob_id])
    email = result["parsed"][blob_id]
    assert sorted(email) == sorted([*CONVENIENCE, "hasAttachment", "preview", "bodyValues",
                                    "textBody", "htmlBody", "attachments"])  # fmt: skip
    assert email["bodyValues"] == {}  # no fetch argument: no values
    default_body = ["partId", "blobId", "size", "name", "type", "charset", "disposition",
                    "cid", "language", "location"]  # fmt: skip
    assert sorted(email["textBody"][0]) == sorted(default_body)
    _, result = parse(
        alice, account, [blob_id], properties=["bodyValues"], fetchHTMLBodyValues=True,
        maxBodyValueBytes=10,
    )  # fmt: skip
    values = result["parsed"][blob_id]["bodyValues"]
    assert list(values) == ["2"]
    assert values["2"]["isTruncated"] is True
    assert len(values["2"]["value"].encode()) <= 10


def test_errors(alice: Client, bob: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    blob_id = upload(alice, account, (CORPUS / "plain.eml").read_bytes())
    # §4.9: a forbidden parsed form is invalidArguments; so is an unknown property.
    for props in (["header:From:asDate"], ["header:Subject:asAddresses"], ["noSuchProperty"],
                  ["header:X:asNothing"], ["header:"]):  # fmt: skip
        name, error = parse(alice, account, [blob_id], properties=props)
        assert (name, error["type"]) == ("error", "invalidArguments"), props
    name, error = parse(alice, account, [blob_id], bodyProperties=["nope"])
    assert (name, error["type"]) == ("error", "invalidArguments")
    missing = "B" + "0" * 64
    _, result = parse(alice, account, [blob_id, missing], properties=["subject"])
    assert result["notFound"] == [missing]
    assert list(result["parsed"]) == [blob_id]
    # A blob of alice's is not bob's to parse.
    _, result = parse(bob, ids["bob"], [blob_id], properties=["subject"])
    assert result == {"accountId": ids["bob"], "parsed": None, "notParsable": None,
                      "notFound": [blob_id]}  # fmt: skip
