"""Browser access tokens (issue 13 item 1, docs/clients.md): a short-lived token, obtained with
the client's credential, that authenticates the three URLs a browser cannot send an
Authorization header to (eventSourceUrl, downloadUrl, the WebSocket) and nothing else; it
expires, it dies with the credential that issued it, and it is never logged. On both backends;
tests/browser/ opens them from a real browser."""

from __future__ import annotations

import base64
import datetime as dt
import time
import urllib.parse

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conformance.notes import fresh_account
from tests.conformance.test_blobs import download_url, unique, uploaded
from tests.conformance.test_eventsource import Events, create_note, eventsource_url
from tests.conformance.test_websocket import WEBSOCKET, echo
from tests.conftest import Client, Server, jmapd, start_server, stop_server


def access_token(client: Client) -> dict[str, str]:
    r = client.http.post("/jmap/access-token")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, str] = r.json()
    return body


def with_token(url: str, token: str) -> str:
    return url + ("&" if "?" in url else "?") + "access_token=" + urllib.parse.quote(token)


def anonymous(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base, timeout=30)


def first_event(http: httpx.Client, url: str) -> tuple[int, str]:
    """The status of an EventSource GET, and its first line when it is 200."""
    with http.stream("GET", url, timeout=httpx.Timeout(10, read=5)) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, r.text
        return 200, next(r.iter_lines())


def test_a_token_is_issued_for_the_credential(server: Server) -> None:
    client, _ = fresh_account(server, "issue")
    before = time.time()
    token = access_token(client)
    assert set(token) == {"accessToken", "expires", "parameter"}
    assert token["parameter"] == "access_token"
    expires = dt.datetime.strptime(token["expires"], "%Y-%m-%dT%H:%M:%SZ")
    lifetime = expires.replace(tzinfo=dt.UTC).timestamp() - before
    assert 3500 < lifetime <= 3601, lifetime  # access_token_ttl's default: an hour


def test_the_eventsource_accepts_a_token(server: Server) -> None:
    client, account = fresh_account(server, "stream")
    token = access_token(client)["accessToken"]
    url = with_token(eventsource_url(client, "*", "state", "0"), token)
    with anonymous(server) as http, http.stream("GET", url, timeout=httpx.Timeout(10, read=5)) as r:
        assert r.status_code == 200
        events = Events(r)
        assert events.next()[0] == "comment"  # the opening comment: subscribed
        create_note(client, account)
        name, data = events.next()
    assert name == "state"
    assert data["@type"] == "StateChange" and set(data["changed"]) == {account}


def test_a_download_accepts_a_token(server: Server) -> None:
    client, account = fresh_account(server, "download")
    data = unique()
    blob_id = uploaded(client, account, data)
    url = with_token(download_url(client, account, blob_id, "a.bin", "image/png"),
                     access_token(client)["accessToken"])  # fmt: skip
    with anonymous(server) as http:
        r = http.get(url)
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "image/png"


def test_a_websocket_accepts_a_token(server: Server) -> None:
    client, _ = fresh_account(server, "socket")
    url = client.session()["capabilities"][WEBSOCKET]["url"]
    url = with_token(url, access_token(client)["accessToken"])
    with connect(url, subprotocols=["jmap"], proxy=None, open_timeout=10) as ws:
        ws.send(orjson.dumps(echo("r1", hello=True)).decode())
        answer = orjson.loads(ws.recv(timeout=10))
    assert answer["@type"] == "Response" and answer["requestId"] == "r1"
    assert answer["methodResponses"] == [["Core/echo", {"hello": True}, "c"]]


def test_a_token_authenticates_nothing_else(server: Server) -> None:
    """Only the three URLs a browser cannot add a header to; never the API, the session, an
    upload, or the issuing of another token (a token cannot extend itself)."""
    client, account = fresh_account(server, "only")
    token = access_token(client)["accessToken"]
    with anonymous(server) as http:
        for method, path in [
            ("GET", "/jmap/session"),
            ("POST", "/jmap/api"),
            ("POST", f"/jmap/upload/{account}/"),
            ("POST", "/jmap/access-token"),
        ]:
            r = http.request(method, with_token(path, token), content=b"{}")
            assert r.status_code == 401, (path, r.text)
            assert r.headers["content-type"] == "application/problem+json"


def test_a_token_reaches_only_its_own_accounts(server: Server) -> None:
    owner, account = fresh_account(server, "owner")
    blob_id = uploaded(owner, account, unique())
    other, _ = fresh_account(server, "other")
    url = with_token(download_url(owner, account, blob_id, "a.bin"),
                     access_token(other)["accessToken"])  # fmt: skip
    with anonymous(server) as http:
        assert http.get(url).status_code == 404


def later(token: str) -> str:
    """The token with its payload re-encoded to expire in 2100, and the old signature."""
    body, mac = token.split(".")
    payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["e"] = 4102444800
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode() + "." + mac


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the signature
        lambda t: later(t),
        lambda t: "",
        lambda t: "not a token",
        lambda t: "x" * 5000,
    ],
    ids=["signature", "payload", "empty", "garbage", "huge"],
)
def test_a_forged_token_is_refused(server: Server, tamper: object) -> None:
    client, account = fresh_account(server, "forged")
    blob_id = uploaded(client, account, unique())
    token = tamper(access_token(client)["accessToken"])  # type: ignore[operator]
    with anonymous(server) as http:
        r = http.get(with_token(download_url(client, account, blob_id, "a.bin"), token))
        assert r.status_code == 401, r.text
        # RFC 6750 §3.1; no Basic challenge, which would make a browser prompt for a password
        assert r.headers["www-authenticate"] == 'Bearer realm="jmapd", error="invalid_token"'
        status, _ = first_event(http, with_token(eventsource_url(client, "*", "no", "0"), token))
        assert status == 401


def test_a_token_dies_with_its_password(server: Server) -> None:
    """A new password revokes the token at once, and ends a stream it opened."""
    client, _ = fresh_account(server, "passwd")
    name = client.session()["username"]
    token = access_token(client)["accessToken"]
    url = with_token(eventsource_url(client, "*", "no", "0"), token)
    with anonymous(server) as http:
        with http.stream("GET", url, timeout=httpx.Timeout(10, read=15)) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            assert next(lines).startswith(":")
            jmapd(server.data, "account", "passwd", name, "--password", "changed-secret")
            assert all(line == "" or line.startswith(":") for line in lines)  # it ends
        assert first_event(http, url)[0] == 401


def test_a_token_dies_with_its_api_token(server: Server) -> None:
    client, _ = fresh_account(server, "apitoken")
    name = client.session()["username"]
    bearer = jmapd(server.data, "token", "create", name, "--name", "browser").strip()
    token = access_token(server.client_with(bearer))["accessToken"]
    url = with_token(eventsource_url(client, "*", "state", "0"), token)
    with anonymous(server) as http:
        assert first_event(http, url)[0] == 200
        jmapd(server.data, "token", "revoke", name, "--name", "browser")
        assert first_event(http, url)[0] == 401


def test_a_token_from_a_read_only_api_token_stays_read_only(server: Server) -> None:
    token = access_token(server.client_with(server.tokens["read-only"]))["accessToken"]
    alice = server.client("alice@example.com")
    url = with_token(alice.session()["capabilities"][WEBSOCKET]["url"], token)
    account = server.accounts["alice@example.com"]
    request = {"@type": "Request", "id": "w", "using": ["urn:ietf:params:jmap:core",
               "urn:jmapd:test"], "methodCalls": [["Note/set", {"accountId": account,
               "create": {"n": {"title": "no"}}}, "c"]]}  # fmt: skip
    with connect(url, subprotocols=["jmap"], proxy=None, open_timeout=10) as ws:
        ws.send(orjson.dumps(request).decode())
        answer = orjson.loads(ws.recv(timeout=10))
    assert answer["methodResponses"][0][0] == "error", answer
    assert answer["methodResponses"][0][1]["type"] == "forbidden"  # as over HTTP


def test_a_refused_websocket_handshake(server: Server) -> None:
    with pytest.raises(InvalidStatus) as refused:
        url = server.base.replace("http", "ws", 1) + "/jmap/ws/?access_token=forged.token"
        with connect(url, subprotocols=["jmap"], proxy=None, open_timeout=10):
            pass
    assert refused.value.response.status_code == 403


def test_an_expired_token_is_refused_and_ends_its_stream(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("short-tokens")
    jmapd(data, "account", "add", "dana@example.com", "--password", "dana-secret")
    server = start_server(data, {"JMAPD_ACCESS_TOKEN_TTL": "3"})
    try:
        client = server.client_with(("dana@example.com", "dana-secret"))
        token = access_token(client)["accessToken"]
        url = with_token(eventsource_url(client, "*", "no", "0"), token)
        started = time.monotonic()
        with anonymous(server) as http:
            with http.stream("GET", url, timeout=httpx.Timeout(10, read=15)) as r:
                assert r.status_code == 200
                assert all(line == "" or line.startswith(":") for line in r.iter_lines())
            assert time.monotonic() - started < 10  # it ended at expiry (checked each second)
            status, text = first_event(http, url)
            assert status == 401 and "expired" in text
        log = server.log()
        assert token not in log and token.split(".")[1] not in log  # never logged
        assert "access token has expired" in log  # the failure is (without the token)
    finally:
        stop_server(server)
