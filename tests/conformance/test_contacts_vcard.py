"""RFC 9555: vCard 3.0 and 4.0 into JSContact cards with `jmapd contacts import`, read back
over HTTP, and out again with `jmapd contacts export` without loss."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conformance.contacts import books, fresh_account, get_cards, query_ids
from tests.conftest import Client, Server, database_env

DATA = Path(__file__).parent.parent / "data" / "contacts"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def contacts(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """`jmapd contacts …`; its output as written (CRLF line ends kept)."""
    done = subprocess.run(
        [sys.executable, "-m", "jmapd.cli", "contacts", *args, "--data", str(server.data)],
        env={**os.environ, **database_env(server.data)},
        capture_output=True,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def user(client: Client) -> str:
    return str(client.session()["username"])


def import_file(server: Server, client: Client, path: Path, *more: str) -> str:
    result = contacts(server, "import", str(path), "--account", user(client), *more)
    assert result.returncode == 0, result.stderr
    return result.stdout


def by_uid(client: Client, account: str) -> dict[str, dict[str, Any]]:
    ids = query_ids(client, account)
    return {c["uid"]: c for c in get_cards(client, account, ids).values()}


def test_import_a_phone_export_in_vcard_3(server: Server) -> None:
    client, account = fresh_account(server)
    out = import_file(server, client, DATA / "iphone-3.0.vcf", "--address-book", "Phone")
    assert out.endswith("imported 3 cards into " + user(client) + ", rejected 0\n")
    phone_book = books(client, account)["Phone"]["id"]
    cards = by_uid(client, account)
    assert set(cards) == {"0A7A1D0E-3C55-4B7A-9E0C-1A2B3C4D5E6F", "ana-uid-1", "group-friends"}
    j = cards["0A7A1D0E-3C55-4B7A-9E0C-1A2B3C4D5E6F"]
    assert j["addressBookIds"] == {phone_book: True}
    assert j["name"] == {
        "components": [
            {"kind": "title", "value": "Dr."},
            {"kind": "given", "value": "Jürgen"},
            {"kind": "given2", "value": "Karl"},
            {"kind": "surname", "value": "Müller"},
        ],
        "isOrdered": True,
        "full": "Dr. Jürgen Karl Müller",
    }
    assert j["emails"] == {
        "e1": {"address": "juergen@wombat.example", "contexts": {"work": True}, "pref": 1},
        "e2": {"address": "jm@private.example", "contexts": {"private": True}},
        "e3": {"address": "jojo@club.example", "label": "Club", "vCardParams": {"group": "item1"}},
    }
    assert j["phones"] == {
        "p1": {"number": "+49 170 1234567", "features": {"mobile": True, "voice": True}, "pref": 1},
        "p2": {"number": "+49 30 123456", "features": {"voice": True}, "contexts": {"work": True}},
        "p3": {"number": "+49 30 654321", "features": {"fax": True}, "contexts": {"private": True}},
    }
    assert j["addresses"]["a1"]["components"] == [
        {"kind": "name", "value": "Hauptstraße 1"},
        {"kind": "locality", "value": "Berlin"},
        {"kind": "postcode", "value": "10115"},
        {"kind": "country", "value": "Germany"},
    ]
    assert j["notes"] == {"n1": {"note": "Met at the conference, liked the talk.\nSecond line."}}
    assert j["anniversaries"] == {
        "a1": {"kind": "birth", "date": {"year": 1970, "month": 2, "day": 28}}
    }
    assert j["organizations"] == {"o1": {"name": "Wombat Works", "units": [{"name": "Research"}]}}
    assert j["keywords"] == {"friends": True, "work": True}
    assert j["updated"] == "2023-05-01T10:20:30Z"
    assert ["x-abadr", {"group": "item2"}, "unknown", "de"] in j["vCardProps"]
    photo = j["media"]["m1"]
    assert photo["kind"] == "photo" and photo["mediaType"] == "image/jpeg" and "blobId" in photo
    group = cards["group-friends"]
    assert group["kind"] == "group"
    assert group["members"] == {
        "urn:uuid:0A7A1D0E-3C55-4B7A-9E0C-1A2B3C4D5E6F": True,
        "urn:uuid:ana-uid-1": True,
    }
    # the imported cards are searchable at once
    assert query_ids(client, account, filter={"email": "jojo@club"}) == [j["id"]]
    assert query_ids(client, account, filter={"name": "muller"}) == [j["id"]]


def test_import_vcard_4_with_non_ascii_and_folded_lines(server: Server) -> None:
    client, account = fresh_account(server)
    import_file(server, client, DATA / "mixed-4.0.vcf")
    cards = by_uid(client, account)
    taro = cards["urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"]
    assert taro["name"]["full"] == "山田 太郎"
    assert taro["name"]["sortAs"] == {"surname": "Yamada", "given": "Taro"}
    assert taro["notes"]["n1"]["note"].endswith("東京都 渋谷区 ✓")
    assert "gefaltet wird, damit" in taro["notes"]["n1"]["note"]
    assert taro["phones"]["p1"] == {
        "number": "tel:+81-90-1234-5678",
        "vCardParams": {"value": "uri"},
        "features": {"mobile": True, "text": True},
    }
    assert taro["addresses"]["a1"]["full"] == "東京都渋谷区1-2-3"
    assert taro["addresses"]["a1"]["countryCode"] == "JP"
    assert taro["anniversaries"]["a1"] == {"kind": "wedding", "date": {"month": 6, "day": 15}}
    assert taro["created"] == "2020-01-01T00:00:00Z"
    assert taro["relatedTo"] == {"urn:uuid:hanako": {"relation": {"spouse": True}}}
    assert ["x-example-custom", {"x-param": "yes"}, "unknown", "kept as is"] in taro["vCardProps"]
    photo = taro["media"]["m1"]
    download = client.session()["downloadUrl"]
    url = (
        download.replace("{accountId}", account)
        .replace("{blobId}", photo["blobId"])
        .replace("{name}", "p")
        .replace("{type}", "image/png")
    )
    assert client.http.get(url).content == PNG
    team = cards["urn:uuid:team"]
    assert team["media"]["m1"] == {"kind": "photo", "uri": "https://example.jp/team.jpg"}
    assert query_ids(client, account, filter={"hasMember": "urn:uuid:hanako"}) == [team["id"]]


def test_export_and_import_back_without_loss(server: Server) -> None:
    """A phone's export imports, exports, and imports again to the same cards and the same
    vCard text."""
    first, first_account = fresh_account(server)
    second, second_account = fresh_account(server)
    for name in ("iphone-3.0.vcf", "mixed-4.0.vcf"):
        import_file(server, first, DATA / name)
    exported = contacts(server, "export", "--account", user(first))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.count("BEGIN:VCARD\r\n") == 5
    assert all(len(line.encode()) <= 75 for line in exported.stdout.split("\r\n"))
    path = DATA.parent.parent.parent / "build" / f"export-{second_account}.vcf"
    path.parent.mkdir(exist_ok=True)
    path.write_text(exported.stdout, newline="")
    try:
        import_file(server, second, path)
    finally:
        path.unlink()
    again = contacts(server, "export", "--account", user(second))
    assert sorted(again.stdout.split("BEGIN:VCARD")) == sorted(exported.stdout.split("BEGIN:VCARD"))
    strip = lambda c: {k: v for k, v in c.items() if k not in ("id", "addressBookIds")}  # noqa: E731
    before, after = by_uid(first, first_account), by_uid(second, second_account)
    assert {u: strip(c) for u, c in after.items()} == {u: strip(c) for u, c in before.items()}


def test_rejected_cards_are_reported_with_their_line(server: Server) -> None:
    client, account = fresh_account(server)
    result = contacts(server, "import", str(DATA / "malformed.vcf"), "--account", user(client))
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("imported 2 cards into " + user(client) + ", rejected 3\n")
    errors = [line for line in result.stderr.split("\n") if "card rejected" in line]
    where = str(DATA / "malformed.vcf")
    assert errors == [
        f"jmapd: {where}:6: card rejected: no END:VCARD",
        f"jmapd: {where}:15: card rejected: alreadyExists uid: a card with this uid exists",
        f"jmapd: {where}:20: card rejected: invalidProperties media/m1/blobId: "
        "a photo must be a recognised image type",
    ]
    assert sorted(by_uid(client, account)) == ["good-1", "good-2"]
    assert "] 5/5" in result.stderr  # the progress bar


def test_bad_arguments_are_one_line_and_exit_2(server: Server) -> None:
    client, _ = fresh_account(server)
    missing = contacts(server, "import", str(DATA / "malformed.vcf"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "--account" in missing.stderr
    nobody = contacts(server, "export", "--account", "nobody@example.com")
    assert (nobody.returncode, nobody.stderr) == (2, "jmapd: no account nobody@example.com\n")
    no_file = contacts(server, "import", "/nonexistent.vcf", "--account", user(client))
    assert no_file.returncode == 2
    assert no_file.stderr.startswith("jmapd: cannot read /nonexistent.vcf")
