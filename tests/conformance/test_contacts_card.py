"""RFC 9610 §3: ContactCard/get, /changes, /set, /copy over the JSContact Card (RFC 9553),
and push of contacts changes."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.conformance.contacts import (
    USING,
    card_set,
    create_card,
    default_book,
    fresh_account,
    get_cards,
    not_created,
    ok,
    person,
)
from tests.conformance.test_eventsource import connect
from tests.conftest import Client, Server

UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d*[1-9])?Z$")
# The smallest PNG (1x1, transparent).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def test_create_and_get_a_full_card(server: Server) -> None:
    client, account = fresh_account(server)
    book = default_book(client, account)
    card = {
        "@type": "Card",
        "version": "1.0",
        "uid": "urn:uuid:22B2C7DF-9120-4969-8460-05956FE6B065",
        "kind": "individual",
        "language": "de-AT",
        "name": {
            "components": [
                {"kind": "title", "value": "Dr."},
                {"kind": "given", "value": "Jürgen"},
                {"kind": "surname", "value": "Müller"},
                {"kind": "surname2", "value": "Pérez"},
            ],
            "isOrdered": True,
            "sortAs": {"surname": "Mueller"},
        },
        "nicknames": {"k1": {"name": "Jojo", "contexts": {"private": True}}},
        "organizations": {"o1": {"name": "ACME", "units": [{"name": "Research"}]}},
        "titles": {"t1": {"name": "Chief Scientist", "kind": "title", "organizationId": "o1"}},
        "emails": {
            "e1": {
                "address": "juergen@example.com",
                "contexts": {"work": True},
                "pref": 1,
                "label": "office",
            }
        },
        "phones": {"p1": {"number": "+43 1 555 1234", "features": {"voice": True, "text": True}}},
        "onlineServices": {
            "s1": {
                "service": "Mastodon",
                "user": "@jm@example.social",
                "uri": "https://example.social/@jm",
            }
        },
        "addresses": {
            "a1": {
                "components": [
                    {"kind": "name", "value": "Ringstraße"},
                    {"kind": "number", "value": "1"},
                    {"kind": "locality", "value": "Wien"},
                    {"kind": "postcode", "value": "1010"},
                ],
                "countryCode": "AT",
                "contexts": {"work": True},
            }
        },
        "anniversaries": {
            "b": {"kind": "birth", "date": {"year": 1970, "month": 2, "day": 28}},
            "m": {"kind": "wedding", "date": {"month": 6, "day": 1}},
            "d": {"kind": "death", "date": {"@type": "Timestamp", "utc": "2019-10-15T23:10:00Z"}},
        },
        "notes": {"n1": {"note": "Met at the conference", "created": "2022-01-01T10:00:00Z"}},
        "keywords": {"friends": True},
        "relatedTo": {"urn:uuid:other": {"relation": {"friend": True}}},
        "links": {"l1": {"kind": "contact", "uri": "mailto:contact@example.com"}},
        "localizations": {"uk": {"name/components/1/value": "Юрген"}},
        "speakToAs": {"grammaticalGender": "masculine"},
        "preferredLanguages": {"l1": {"language": "de", "pref": 1}},
        "example.com:vendor": {"anything": [1, 2]},
        "futureProperty": "kept",
    }
    out = card_set(client, account, create={"c": card})
    created = out["created"]["c"]
    assert set(created) == {"id", "addressBookIds", "created", "updated"}
    assert created["addressBookIds"] == {book: True}
    assert UTC.match(created["created"]) and created["updated"] == created["created"]
    got = get_cards(client, account, [created["id"]])[created["id"]]
    assert got == {
        **card,
        "id": created["id"],
        "addressBookIds": {book: True},
        "created": created["created"],
        "updated": created["updated"],
    }
    # a card not given @type and version gets them; absent properties are left out
    minimal = create_card(client, account, name={"full": "Min"})
    got = get_cards(client, account, [minimal])[minimal]
    assert set(got) == {
        "id",
        "@type",
        "version",
        "addressBookIds",
        "uid",
        "name",
        "created",
        "updated",
    }
    assert got["@type"] == "Card" and got["version"] == "1.0"
    assert got["uid"].startswith("urn:uuid:")
    # asking for properties
    only = ok(
        client,
        "ContactCard/get",
        {"accountId": account, "ids": [minimal], "properties": ["name", "emails"]},
    )["list"]
    assert only == [{"id": minimal, "name": {"full": "Min"}}]


def test_invalid_cards_name_the_property_path(server: Server) -> None:
    """RFC 9553 validation: each invalid value named by its path."""
    client, account = fresh_account(server)
    bad: dict[str, tuple[dict[str, Any], list[str]]] = {
        "type": ({"@type": "Contact"}, ["@type"]),
        "version": ({"version": "2.0"}, ["version"]),
        "kind": ({"kind": "person"}, ["kind"]),
        "component": (
            {
                "name": {
                    "components": [
                        {"kind": "given", "value": "A"},
                        {"kind": "nickname", "value": "B"},
                    ]
                }
            },
            ["name/components/1/kind"],
        ),
        "component-value": (
            {"name": {"components": [{"kind": "given"}]}},
            ["name/components/0/value"],
        ),
        "no-name": ({"name": {"isOrdered": True}}, ["name/components"]),
        "separator": (
            {
                "name": {
                    "components": [
                        {"kind": "given", "value": "A"},
                        {"kind": "separator", "value": "-"},
                    ]
                }
            },
            ["name/components/1/kind"],
        ),
        "email": ({"emails": {"e1": {"label": "x"}}}, ["emails/e1/address"]),
        "pref": ({"emails": {"e1": {"address": "a@b", "pref": 0}}}, ["emails/e1/pref"]),
        "email-key": ({"emails": {"no spaces": {"address": "a@b"}}}, ["emails/no spaces"]),
        "date": (
            {"anniversaries": {"a": {"kind": "birth", "date": {"month": 2, "day": 30}}}},
            ["anniversaries/a/date/day"],
        ),
        "month": (
            {"anniversaries": {"a": {"kind": "birth", "date": {"month": 13}}}},
            ["anniversaries/a/date/month"],
        ),
        "utc": ({"created": "2022-01-01T10:00:00.000Z"}, ["created"]),
        "timestamp": (
            {
                "anniversaries": {
                    "a": {"kind": "death", "date": {"@type": "Timestamp", "utc": "yesterday"}}
                }
            },
            ["anniversaries/a/date/utc"],
        ),
        "members": ({"members": {"urn:uuid:x": True}}, ["members"]),
        "member-value": (
            {"kind": "group", "members": {"urn:uuid:x": False}},
            ["members/urn:uuid:x"],
        ),
        "case": ({"Emails": {}}, ["Emails"]),
        "media": ({"media": {"m": {"kind": "photo"}}}, ["media/m/uri"]),
        "localization": (
            {"localizations": {"de": {"localizations/x": 1}}},
            ["localizations/de/localizations/x"],
        ),
        "localized-value": (
            {"localizations": {"de": {"kind": "mensch"}}},
            ["localizations/de/kind"],
        ),
        "phonetic": (
            {"name": {"components": [{"kind": "given", "value": "A", "phonetic": "a"}]}},
            ["name/components/0/phonetic"],
        ),
        "books": ({"addressBookIds": {}}, ["addressBookIds"]),
        "server": ({"id": "x"}, ["id"]),
    }
    out = card_set(client, account, create={k: v for k, (v, _) in bad.items()})
    assert out["created"] is None, out["created"]
    for key, (_, properties) in bad.items():
        error = out["notCreated"][key]
        assert error["type"] == "invalidProperties", (key, error)
        assert error["properties"] == properties, (key, error)


def test_uid_is_unique_in_the_account(server: Server) -> None:
    client, account = fresh_account(server)
    first = create_card(client, account, uid="urn:uuid:same")
    error = not_created(client, account, uid="urn:uuid:same")
    assert error["type"] == "alreadyExists" and error["existingId"] == first
    second = create_card(client, account, uid="urn:uuid:other")
    out = card_set(client, account, update={second: {"uid": "urn:uuid:same"}})
    assert out["notUpdated"][second]["type"] == "alreadyExists"


def test_update_patches_and_changes(server: Server) -> None:
    client, account = fresh_account(server)
    id = create_card(client, account, **person("Ann", "Lee", emails={"e": {"address": "a@x"}}))
    before = get_cards(client, account, [id])[id]
    state = ok(client, "ContactCard/get", {"accountId": account, "ids": []})["state"]
    out = card_set(
        client,
        account,
        update={
            id: {
                "name": person("Anna", "Lee")["name"],
                "emails/e2": {"address": "anna@y", "pref": 1},
                "emails/e": None,
                "nicknames": {"n": {"name": "Annie"}},
                "example.com:x": True,
            }
        },
    )
    assert out["notUpdated"] is None, out
    after = get_cards(client, account, [id])[id]
    assert (out["updated"][id] or {}).get("updated", before["updated"]) == after["updated"]
    assert after["updated"] >= before["updated"]
    assert after["name"]["components"][0] == {"kind": "given", "value": "Anna"}
    assert after["emails"] == {"e2": {"address": "anna@y", "pref": 1}}
    assert after["nicknames"] == {"n": {"name": "Annie"}}
    assert after["example.com:x"] is True
    assert after["created"] == before["created"]
    # null removes an optional property
    card_set(client, account, update={id: {"nicknames": None, "example.com:x": None}})
    after = get_cards(client, account, [id])[id]
    assert "nicknames" not in after and "example.com:x" not in after
    # an invalid value names its path; arrays are replaced whole (RFC 8620 §5.3)
    name = {"components": [{"kind": "given", "value": "A"}, {"kind": "middle", "value": "B"}]}
    bad = card_set(client, account, update={id: {"name": name}})
    assert bad["notUpdated"][id]["properties"] == ["name/components/1/kind"]
    bad = card_set(client, account, update={id: {"name/components/0/value": "B"}})
    assert bad["notUpdated"][id]["type"] == "invalidPatch"
    changes = ok(client, "ContactCard/changes", {"accountId": account, "sinceState": state})
    assert (changes["created"], changes["updated"], changes["destroyed"]) == ([], [id], [])
    out = card_set(client, account, destroy=[id])
    assert out["destroyed"] == [id]
    changes = ok(client, "ContactCard/changes", {"accountId": account, "sinceState": state})
    assert (changes["created"], changes["updated"], changes["destroyed"]) == ([], [], [id])


def test_cards_in_several_address_books(server: Server) -> None:
    client, account = fresh_account(server)
    home = default_book(client, account)
    made = ok(client, "AddressBook/set", {"accountId": account, "create": {"o": {"name": "O"}}})
    other = made["created"]["o"]["id"]
    id = create_card(client, account, addressBookIds={home: True, other: True})
    assert get_cards(client, account, [id])[id]["addressBookIds"] == {home: True, other: True}
    out = card_set(client, account, update={id: {f"addressBookIds/{home}": None}})
    assert out["notUpdated"] is None
    out = card_set(client, account, update={id: {f"addressBookIds/{other}": None}})
    assert out["notUpdated"][id]["properties"] == ["addressBookIds"]
    error = not_created(client, account, addressBookIds={"nosuchbook": True})
    assert error["properties"] == ["addressBookIds"]


def test_media_by_blob_and_data_uri(server: Server) -> None:
    """§3: media by blobId; a data: URI is kept as a blob and shown by blobId; a photo must
    be an image."""
    client, account = fresh_account(server)
    upload = client.session()["uploadUrl"].replace("{accountId}", account)
    blob = client.http.post(upload, content=PNG, headers={"Content-Type": "image/png"}).json()
    text = client.http.post(
        upload, content=b"not an image", headers={"Content-Type": "text/plain"}
    ).json()
    id = create_card(client, account, media={"p": {"kind": "photo", "blobId": blob["blobId"]}})
    got = get_cards(client, account, [id])[id]
    assert got["media"] == {
        "p": {"kind": "photo", "blobId": blob["blobId"], "mediaType": "image/png"}
    }
    inline = "data:image/png;base64," + base64.b64encode(PNG).decode()
    id2 = create_card(client, account, media={"p": {"kind": "photo", "uri": inline}})
    media = get_cards(client, account, [id2])[id2]["media"]["p"]
    assert "uri" not in media and media["mediaType"] == "image/png"
    download = client.session()["downloadUrl"]
    url = (
        download.replace("{accountId}", account)
        .replace("{blobId}", media["blobId"])
        .replace("{name}", "p.png")
        .replace("{type}", "image/png")
    )
    assert client.http.get(url).content == PNG
    error = not_created(client, account, media={"p": {"kind": "photo", "blobId": text["blobId"]}})
    assert error["type"] == "invalidProperties" and error["properties"] == ["media/p/blobId"]
    error = not_created(client, account, media={"p": {"kind": "photo", "blobId": "Bnosuch"}})
    assert error["type"] == "blobNotFound" and error["notFound"] == ["Bnosuch"]
    # a photo by URI is kept as given
    by_uri = {"p": {"kind": "photo", "uri": "https://example.com/me.jpg"}}
    id3 = create_card(client, account, media=by_uri)
    assert get_cards(client, account, [id3])[id3]["media"] == by_uri


def test_groups_and_members(server: Server) -> None:
    client, account = fresh_account(server)
    create_card(client, account, uid="urn:uuid:m1", **person("A", "One"))
    group = create_card(
        client,
        account,
        kind="group",
        name={"full": "Team"},
        members={"urn:uuid:m1": True, "urn:uuid:unknown": True},
    )
    got = get_cards(client, account, [group])[group]
    assert got["members"] == {"urn:uuid:m1": True, "urn:uuid:unknown": True}
    out = card_set(client, account, update={group: {"members/urn:uuid:m2": True}})
    assert out["notUpdated"] is None
    assert len(get_cards(client, account, [group])[group]["members"]) == 3


def test_copy_between_accounts(alice: Client, ids: dict[str, str]) -> None:
    """§3.6: copy a card from bob's account (shared with alice) to hers."""
    bob_book = default_book(alice, ids["bob"])
    alice_book = default_book(alice, ids["alice"])
    uid = f"urn:uuid:copy-{ids['bob']}-{id(alice)}"
    original = create_card(
        alice, ids["bob"], uid=uid, addressBookIds={bob_book: True}, **person("Copy", "Me")
    )
    responses = alice.request(
        [
            [
                "ContactCard/copy",
                {
                    "fromAccountId": ids["bob"],
                    "accountId": ids["alice"],
                    "create": {"k": {"id": original, "addressBookIds": {alice_book: True}}},
                    "onSuccessDestroyOriginal": True,
                },
                "0",
            ]
        ],
        USING,
    )["methodResponses"]
    assert [r[0] for r in responses] == ["ContactCard/copy", "ContactCard/set"]
    out = responses[0][1]
    assert out["notCreated"] is None, out
    assert responses[1][1]["destroyed"] == [original]
    copy = out["created"]["k"]["id"]
    got = get_cards(alice, ids["alice"], [copy])[copy]
    assert got["uid"] == uid and got["name"] == person("Copy", "Me")["name"]
    assert got["addressBookIds"] == {alice_book: True}
    assert get_cards(alice, ids["bob"], [original]) == {}


def test_changes_are_pushed(server: Server) -> None:
    client, account = fresh_account(server)
    other = server.client(client.session()["username"])
    with connect(client, types="ContactCard,AddressBook") as events:
        out = card_set(other, account, create={"c": {"name": {"full": "Pushed"}}})
        name, data = events.next()
        assert name == "state"
        assert data["changed"][account]["ContactCard"] == out["newState"]
