"""RFC 8620 §2: the Session resource and service autodiscovery (§2.2)."""

from __future__ import annotations

import httpx

from tests.conftest import CORE, LIMITS, MAIL, TEST, TEST_PERSONAL, Client, Server

SUBMISSION = "urn:ietf:params:jmap:submission"
VACATION = "urn:ietf:params:jmap:vacationresponse"
MDN = "urn:ietf:params:jmap:mdn"
CONTACTS = "urn:ietf:params:jmap:contacts"


def contacts_account(writable: bool) -> dict[str, object]:
    return {"maxAddressBooksPerCard": 100, "mayCreateAddressBook": writable}


SORT_OPTIONS = [
    "allInThreadHaveKeyword", "from", "hasKeyword", "receivedAt", "sentAt", "size",
    "someInThreadHaveKeyword", "subject", "to",
]  # fmt: skip


def mail_account(may_create_top_level: bool) -> dict[str, object]:
    """RFC 8621 §1.3.1: the mail capability of an account."""
    return {
        "maxMailboxesPerEmail": 256,
        "maxMailboxDepth": 10,
        "maxSizeMailboxName": 255,
        "maxSizeAttachmentsPerEmail": 50_000_000,
        # RFC 8621 §4.4.2: every sort it lists, sorted
        "emailQuerySortOptions": SORT_OPTIONS,
        "mayCreateTopLevelMailbox": may_create_top_level,
    }


def test_well_known_redirects_to_the_session(server: Server) -> None:
    with httpx.Client() as http:
        r = http.get(server.base + "/.well-known/jmap")
    assert r.status_code == 307
    assert r.headers["location"] == server.base + "/jmap/session"


def test_session_is_complete(server: Server, alice: Client, ids: dict[str, str]) -> None:
    session = alice.session()
    core = session["capabilities"][CORE]
    assert core == {
        "maxSizeUpload": int(LIMITS["JMAPD_MAX_SIZE_UPLOAD"]),
        "maxConcurrentUpload": int(LIMITS["JMAPD_MAX_CONCURRENT_UPLOAD"]),
        "maxSizeRequest": int(LIMITS["JMAPD_MAX_SIZE_REQUEST"]),
        "maxConcurrentRequests": int(LIMITS["JMAPD_MAX_CONCURRENT_REQUESTS"]),
        "maxCallsInRequest": int(LIMITS["JMAPD_MAX_CALLS_IN_REQUEST"]),
        "maxObjectsInGet": int(LIMITS["JMAPD_MAX_OBJECTS_IN_GET"]),
        "maxObjectsInSet": int(LIMITS["JMAPD_MAX_OBJECTS_IN_SET"]),
        "collationAlgorithms": ["i;ascii-casemap", "i;ascii-numeric", "i;unicode-casemap"],
    }
    assert session["username"] == "alice@example.com"
    assert session["accounts"] == {
        ids["alice"]: {
            "name": "alice@example.com",
            "isPersonal": True,
            "isReadOnly": False,
            "accountCapabilities": {
                MAIL: mail_account(True),
                TEST: {},
                TEST_PERSONAL: {"x": 1},
                SUBMISSION: {
                    "maxDelayedSend": 30 * 86400,
                    "submissionExtensions": {"FUTURERELEASE": [str(30 * 86400)]},
                },
                VACATION: {},
                MDN: {},
                CONTACTS: contacts_account(True),
            },
        },
        ids["bob"]: {
            "name": "bob@example.com",
            "isPersonal": False,
            "isReadOnly": False,
            "accountCapabilities": {
                MAIL: mail_account(True),
                TEST: {},
                CONTACTS: contacts_account(True),
            },
        },
        ids["carol"]: {
            "name": "carol@example.com",
            "isPersonal": False,
            "isReadOnly": True,
            "accountCapabilities": {
                MAIL: mail_account(False),
                TEST: {},
                CONTACTS: contacts_account(False),
            },
        },
    }
    assert session["primaryAccounts"] == dict.fromkeys(
        (MAIL, TEST, TEST_PERSONAL, SUBMISSION, VACATION, MDN, CONTACTS), ids["alice"]
    )
    assert session["capabilities"][MAIL] == {}
    assert session["apiUrl"] == server.base + "/jmap/api"
    assert session["uploadUrl"] == server.base + "/jmap/upload/{accountId}/"
    assert session["downloadUrl"] == (
        server.base + "/jmap/download/{accountId}/{blobId}/{name}?type={type}"
    )
    assert session["eventSourceUrl"] == (
        server.base + "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}"
    )
    assert isinstance(session["state"], str) and session["state"]


def test_urls_follow_the_host_header(server: Server, alice: Client) -> None:
    r = alice.http.get("/jmap/session", headers={"Host": "mail.example.org:8443"})
    assert r.json()["apiUrl"] == "http://mail.example.org:8443/jmap/api"


def test_session_state_matches_api_responses(alice: Client) -> None:
    state = alice.session()["state"]
    response = alice.request([["Core/echo", {}, "c1"]])
    assert response["sessionState"] == state


def test_session_state_changes_when_access_changes(server: Server) -> None:
    from tests.conftest import jmapd

    jmapd(server.data, "account", "add", "dave@example.com", "--password", "dave-secret")
    server.passwords["dave@example.com"] = "dave-secret"
    dave = server.client("dave@example.com")
    before = dave.session()
    assert len(before["accounts"]) == 1
    jmapd(server.data, "account", "grant", "bob@example.com", "dave@example.com", "--read-only")
    after = dave.session()
    assert len(after["accounts"]) == 2
    assert after["state"] != before["state"]
    assert dave.request([["Core/echo", {}, "c1"]])["sessionState"] == after["state"]
