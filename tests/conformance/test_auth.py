"""RFC 8620 §3.1 ("an authenticated POST"), §8.2 authentication schemes, and account isolation
(§1.6.2, §3.6.2 accountNotFound).

The HTTP side is RFC 9110 §11: a 401 carries a WWW-Authenticate challenge for every scheme the
server accepts (here Basic and Bearer), and the body is RFC 7807 problem JSON like every other
error of this server (§3.6.1).
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import TEST, USING, Client, Server, jmapd

ECHO = {"using": USING, "methodCalls": [["Core/echo", {"hi": 1}, "c"]]}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def send(server: Server, authorization: str | None, path: str = "/jmap/api") -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(base_url=server.base, timeout=30) as http:
        if path == "/jmap/api":
            return http.post(path, json=ECHO, headers=headers)
        return http.get(path, headers=headers)


def assert_unauthorized(r: httpx.Response) -> dict[str, Any]:
    """401, a challenge naming Basic and Bearer, and problem JSON with no internals."""
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert re.search(r"(^|,\s*)Basic\s+realm=", challenge), challenge
    assert re.search(r"(^|,\s*)Bearer\s+realm=", challenge), challenge
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 401
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert set(body) <= {"type", "status", "detail", "title"}
    for leak in ("Traceback", 'File "', "Error", "argon2", "sqlite"):
        assert leak not in r.text, r.text
    return dict(body)


BAD_AUTHORIZATION: dict[str, str | None] = {
    "none": None,
    "empty": "",
    "wrong password": basic("alice@example.com", "not-the-password"),
    "empty password": basic("alice@example.com", ""),
    "unknown user": basic("nobody@example.com", "alice-secret"),
    "Basic, not base64": "Basic !!!not-base64!!!",
    "Basic, no colon": "Basic " + base64.b64encode(b"alice@example.com").decode(),
    "Basic, not UTF-8": "Basic " + base64.b64encode(b"alice@example.com:\xff\xfe").decode(),
    "Basic, no credentials": "Basic",
    "Bearer, unknown token": "Bearer " + uuid.uuid4().hex,
    "Bearer, no token": "Bearer",
    "Bearer, a password": "Bearer alice-secret",
    "unknown scheme": 'Digest username="alice@example.com"',
    "scheme only": "Negotiate",
}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
def test_unauthorized(server: Server, alice: Client, authorization: str | None) -> None:
    """§3.1: API requests must be authenticated; without valid credentials the answer is 401
    with a challenge for both schemes, and the server goes on serving."""
    assert_unauthorized(send(server, authorization))
    assert alice.call("Core/echo", {"ok": True}) == ["Core/echo", {"ok": True}]


def test_every_resource_needs_authentication(server: Server, ids: dict[str, str]) -> None:
    """§2, §6.1, §6.2, §7.3: the session, upload, download and the event source are
    authenticated too."""
    account = ids["alice"]
    assert_unauthorized(send(server, None, "/jmap/session"))
    assert_unauthorized(send(server, basic("alice@example.com", "nope"), "/jmap/session"))
    with httpx.Client(base_url=server.base, timeout=30) as http:
        assert_unauthorized(http.post(f"/jmap/upload/{account}/", content=b"x"))
        assert_unauthorized(http.get(f"/jmap/download/{account}/Gblob/x.txt"))
        assert_unauthorized(http.get("/jmap/eventsource/?types=*&closeafter=no&ping=0"))


def test_unknown_user_and_wrong_password_look_alike(server: Server) -> None:
    """§8: a 401 must not tell an attacker which account names exist."""
    wrong_password = assert_unauthorized(send(server, basic("alice@example.com", "nope")))
    unknown_user = assert_unauthorized(send(server, basic("nobody@example.com", "nope")))
    assert wrong_password == unknown_user


def test_basic_works(server: Server) -> None:
    """Basic credentials of an account (the scheme name is case-insensitive, RFC 9110 §11.1)."""
    for scheme in ("Basic", "bASIC"):
        authorization = basic("bob@example.com", "bob-secret").replace("Basic", scheme, 1)
        r = send(server, authorization)
        assert r.status_code == 200, r.text
        assert r.json()["methodResponses"] == [["Core/echo", {"hi": 1}, "c"]]


def test_password_with_colon_and_unicode(server: Server) -> None:
    """RFC 7617 §2: the user-id ends at the first colon; the password may hold more colons,
    and with charset="UTF-8" it is UTF-8."""
    user, password = f"{uuid.uuid4().hex[:8]}@example.com", "pä:ss:wörd"
    jmapd(server.data, "account", "add", user, "--password", password)
    r = send(server, basic(user, password), "/jmap/session")
    assert r.status_code == 200, r.text
    assert r.json()["username"] == user
    assert_unauthorized(send(server, basic(user, "pä:ss")))


def test_bearer_token_works(server: Server, ids: dict[str, str]) -> None:
    """§8.2: an API token for alice acts as alice, with her accounts."""
    for scheme in ("Bearer", "bearer"):
        r = send(server, f"{scheme} {server.tokens['full']}", "/jmap/session")
        assert r.status_code == 200, r.text
        session = r.json()
        assert session["username"] == "alice@example.com"
        assert sorted(session["accounts"]) == sorted([ids["alice"], ids["bob"], ids["carol"]])
    client = server.client_with(server.tokens["full"])
    assert client.call("Core/echo", {"a": 1}) == ["Core/echo", {"a": 1}]
    assert client.ok("Note/get", {"accountId": ids["alice"], "ids": []})["list"] == []


def test_revoked_token(server: Server) -> None:
    """§8.2: tokens can be "individually revoked". A token revoked before its first use is
    refused; another token of the same user keeps working."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    keep = jmapd(server.data, "token", "create", "bob@example.com", "--name", name + "-keep")
    token = jmapd(server.data, "token", "create", "bob@example.com", "--name", name).strip()
    jmapd(server.data, "token", "revoke", "bob@example.com", "--name", name)
    assert_unauthorized(send(server, f"Bearer {token}"))
    r = send(server, f"Bearer {keep.strip()}")
    assert r.status_code == 200, r.text


def test_revoked_token_after_use(server: Server, ids: dict[str, str]) -> None:
    """§8.2: revoking a token in use takes effect at once, though the server remembers
    verified credentials for a while (auth_cache_ttl): the session and every method that
    reads an account refuse it. (Core/echo alone, which reads nothing, is not checked here.)"""
    name = f"t-{uuid.uuid4().hex[:8]}"
    token = jmapd(server.data, "token", "create", "bob@example.com", "--name", name).strip()
    get = {"using": USING, "methodCalls": [["Note/get", {"accountId": ids["bob"], "ids": []}, "g"]]}
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/jmap/session").status_code == 200
        r = http.post("/jmap/api", json=get)
        assert r.status_code == 200, r.text
        assert r.json()["methodResponses"][0][0] == "Note/get"
        jmapd(server.data, "token", "revoke", "bob@example.com", "--name", name)
        assert_unauthorized(http.get("/jmap/session"))
        assert_unauthorized(http.post("/jmap/api", json=get))


def test_refused_request_leaves_the_client_working(server: Server, alice: Client) -> None:
    """A request refused before its body was read (here for its credentials) must not break
    the client's next request on the same connection. This server does not read on, so it
    closes the connection and says so first (Connection: close, RFC 9112 §9.6); a client
    reusing the connection unwarned may lose the next request (racy, hence the loop)."""
    body = b'{"using": [], "methodCalls": []}' + b" " * 100_000
    good = {"using": USING, "methodCalls": [["Core/echo", {"n": 1}, "c"]]}
    auth = {"Authorization": basic("alice@example.com", server.passwords["alice@example.com"])}
    alice.session()  # alice's credentials are verified once, and remembered
    with httpx.Client(base_url=server.base, timeout=30) as http:
        for i in range(20):
            headers = {"Authorization": "Digest x"} if i % 2 else {}
            r = http.post("/jmap/api", content=body, headers=headers)
            assert_unauthorized(r)
            assert r.headers["connection"] == "close"
            r = http.post("/jmap/api", json=good, headers=auth)
            assert r.status_code == 200, r.text
            assert r.json()["methodResponses"] == [["Core/echo", {"n": 1}, "c"]]


# Isolation: what one user sees of another's account


def test_bob_does_not_see_alice(bob: Client, ids: dict[str, str]) -> None:
    """§2: the session lists only the accounts the user may access."""
    session = bob.session()
    assert session["username"] == "bob@example.com"
    assert list(session["accounts"]) == [ids["bob"]]
    assert session["primaryAccounts"][TEST] == ids["bob"]
    for name in ("alice", "carol"):
        assert ids[name] not in str(session)


def test_bob_cannot_use_alice_account(bob: Client, ids: dict[str, str]) -> None:
    """§3.6.2 accountNotFound: an account the user has no access to does not exist for him,
    for reading and writing alike."""
    for name, args in (
        ("Note/get", {"accountId": ids["alice"], "ids": None}),
        ("Note/query", {"accountId": ids["alice"]}),
        ("Note/changes", {"accountId": ids["alice"], "sinceState": "0"}),
        ("Note/set", {"accountId": ids["alice"], "create": {"n": {"title": "intruder"}}}),
        ("Setting/get", {"accountId": ids["alice"], "ids": None}),
    ):
        rname, rargs = bob.call(name, args)
        assert (rname, rargs["type"]) == ("error", "accountNotFound"), (name, rargs)


def test_record_ids_do_not_cross_accounts(alice: Client, bob: Client, ids: dict[str, str]) -> None:
    """§1.6.2: records live in one account; asking for alice's Note by its id in bob's own
    account finds nothing, and cannot change or destroy it."""
    title = f"secret-{uuid.uuid4().hex[:10]}"
    created = alice.ok("Note/set", {"accountId": ids["alice"], "create": {"n": {"title": title}}})
    note = created["created"]["n"]["id"]
    try:
        got = bob.ok("Note/get", {"accountId": ids["bob"], "ids": [note]})
        assert (got["list"], got["notFound"]) == ([], [note])
        found = bob.ok("Note/query", {"accountId": ids["bob"], "filter": {"title": title}})
        assert found["ids"] == []
        updated = bob.ok("Note/set", {"accountId": ids["bob"], "update": {note: {"title": "x"}}})
        assert updated["notUpdated"][note]["type"] == "notFound"
        destroyed = bob.ok("Note/set", {"accountId": ids["bob"], "destroy": [note]})
        assert destroyed["notDestroyed"][note]["type"] == "notFound"
        mine = alice.ok("Note/get", {"accountId": ids["alice"], "ids": [note]})
        assert [n["title"] for n in mine["list"]] == [title]
    finally:
        alice.ok("Note/set", {"accountId": ids["alice"], "destroy": [note]})
