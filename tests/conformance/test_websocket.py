"""RFC 8887: JMAP over WebSocket, with a real WebSocket client (the `websockets` library):
discovery (§3), the handshake (§4.2), requests and responses (§4.3.2, §4.3.3), request-level
errors (§4.3.4), push with pushState (§4.3.5), and the limits of HTTP. On both backends."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conformance.notes import fresh_account
from tests.conftest import CORE, TEST, Client, Server, jmapd

WEBSOCKET = "urn:ietf:params:jmap:websocket"


def authorization(server: Server, name: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{server.passwords[name]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextlib.contextmanager
def socket(server: Server, name: str, **kwargs: Any) -> Iterator[ClientConnection]:
    url = server.client(name).session()["capabilities"][WEBSOCKET]["url"]
    with connect(url, subprotocols=["jmap"], additional_headers=authorization(server, name),
                 proxy=None, open_timeout=10, **kwargs) as ws:  # fmt: skip
        yield ws


def send(ws: ClientConnection, value: dict[str, Any]) -> None:
    ws.send(orjson.dumps(value).decode())


def receive(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message = ws.recv(timeout=timeout)
    value: dict[str, Any] = orjson.loads(message)
    return value


def echo(request_id: str, **args: Any) -> dict[str, Any]:
    return {"@type": "Request", "id": request_id, "using": [CORE],
            "methodCalls": [["Core/echo", args, "c"]]}  # fmt: skip


def test_the_session_names_the_websocket(server: Server, alice: Client) -> None:
    """§3: a ws:// URL (wss:// behind TLS) and supportsPush."""
    capability = alice.session()["capabilities"][WEBSOCKET]
    assert capability == {"url": server.base.replace("http", "ws", 1) + "/jmap/ws/",
                          "supportsPush": True}  # fmt: skip


def test_requests_and_responses(server: Server) -> None:
    """§4.3.2-4.3.3: a Request with @type and id; its Response with requestId."""
    with socket(server, "alice@example.com") as ws:
        assert ws.subprotocol == "jmap"
        send(ws, echo("r1", hello=True))
        response = receive(ws)
        assert response["@type"] == "Response"
        assert response["requestId"] == "r1"
        assert response["methodResponses"] == [["Core/echo", {"hello": True}, "c"]]
        assert isinstance(response["sessionState"], str)
        # Without an id, none comes back.
        send(ws, {k: v for k, v in echo("x").items() if k != "id"})
        assert "requestId" not in receive(ws)


def test_request_level_errors(server: Server) -> None:
    """§4.3.4: RequestError problem details, with the requestId they came with."""
    with socket(server, "alice@example.com") as ws:
        send(ws, {"@type": "Request", "id": "r2", "using": [CORE, "urn:nosuch"],
                  "methodCalls": []})  # fmt: skip
        error = receive(ws)
        assert error["@type"] == "RequestError" and error["requestId"] == "r2"
        assert error["type"] == "urn:ietf:params:jmap:error:unknownCapability"
        assert error["status"] == 400
        ws.send("{not json")
        error = receive(ws)
        assert (error["@type"], error["type"]) == (
            "RequestError",
            "urn:ietf:params:jmap:error:notJSON",
        )
        send(ws, {"@type": "Nonsense", "id": "r3"})
        error = receive(ws)
        assert error["type"] == "urn:ietf:params:jmap:error:notRequest"
        assert error["requestId"] == "r3"
        limit = server.client("alice@example.com").session()["capabilities"][CORE][
            "maxSizeRequest"]  # fmt: skip
        send(ws, echo("big", padding="x" * limit))
        error = receive(ws)
        assert (error["type"], error["limit"]) == ("urn:ietf:params:jmap:error:limit",
                                                   "maxSizeRequest")  # fmt: skip
        send(ws, echo("after"))  # the connection goes on
        assert receive(ws)["requestId"] == "after"


def test_the_handshake_needs_credentials_and_the_subprotocol(server: Server) -> None:
    url = server.client("alice@example.com").session()["capabilities"][WEBSOCKET]["url"]
    for headers, protocols in (
        ({}, ["jmap"]),
        ({"Authorization": "Basic " + base64.b64encode(b"alice@example.com:wrong").decode()},
         ["jmap"]),
        (authorization(server, "alice@example.com"), ["chat"]),
    ):  # fmt: skip
        with pytest.raises(InvalidStatus):
            connect(url, subprotocols=protocols, additional_headers=headers, proxy=None)


def test_a_binary_frame_closes_the_connection(server: Server) -> None:
    """§4.3.1: binary frames are not JMAP: closed with 1003."""
    with socket(server, "alice@example.com") as ws:
        ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


def test_push_with_data_types_and_push_state(server: Server, ids: dict[str, str]) -> None:
    """§4.3.5: WebSocketPushEnable with dataTypes; each StateChange carries a pushState;
    reconnecting with it, the client is told at once what it missed; WebSocketPushDisable
    stops the pushes."""
    client, account = fresh_account(server, "ws")
    name = client.session()["username"]
    with socket(server, name) as ws:
        send(ws, {"@type": "WebSocketPushEnable", "dataTypes": ["Note"]})
        time.sleep(0.3)
        client.ok("Folder/set", {"accountId": account, "create": {"f": {"name": "not pushed"}}})
        created = client.ok("Note/set", {"accountId": account, "create": {"n": {"title": "t"}}})
        change = receive(ws)
        assert change["@type"] == "StateChange"
        assert change["changed"] == {account: {"Note": created["newState"]}}
        push_state = change["pushState"]
        assert isinstance(push_state, str) and push_state
        send(ws, {"@type": "WebSocketPushDisable"})
        time.sleep(0.3)
        client.ok("Note/set", {"accountId": account, "create": {"n": {"title": "quiet"}}})
        send(ws, echo("still"))  # the next message is the echo, not a push
        assert receive(ws)["requestId"] == "still"
    missed = client.ok("Note/set", {"accountId": account, "create": {"n": {"title": "away"}}})
    with socket(server, name) as ws:
        send(ws, {"@type": "WebSocketPushEnable", "dataTypes": ["Note"], "pushState": push_state})
        change = receive(ws)
        assert change["changed"] == {account: {"Note": missed["newState"]}}
        assert change["pushState"] != push_state
        # Nothing moved since that: no push on enabling with it.
        send(ws, {"@type": "WebSocketPushEnable", "dataTypes": ["Note"],
                  "pushState": change["pushState"]})  # fmt: skip
        send(ws, echo("nothing"))
        assert receive(ws)["requestId"] == "nothing"


def test_pushes_only_the_users_accounts(server: Server, ids: dict[str, str]) -> None:
    bob = server.client("bob@example.com")
    carol, carol_account = fresh_account(server, "other")
    with socket(server, "bob@example.com") as ws:
        send(ws, {"@type": "WebSocketPushEnable", "dataTypes": None})
        time.sleep(0.3)
        carol.ok("Note/set", {"accountId": carol_account, "create": {"n": {"title": "hers"}}})
        mine = bob.ok("Note/set", {"accountId": ids["bob"], "create": {"n": {"title": "his"}}})
        change = receive(ws)
        assert change["changed"] == {ids["bob"]: {"Note": mine["newState"]}}


def test_requests_count_toward_max_concurrent_requests(server: Server) -> None:
    """§4.3.2: maxConcurrentRequests applies to requests on the WebSocket too."""
    client, _ = fresh_account(server, "busy")
    name = client.session()["username"]
    limit = client.session()["capabilities"][CORE]["maxConcurrentRequests"]
    with socket(server, name) as ws:
        for i in range(limit + 1):
            send(ws, {"@type": "Request", "id": f"s{i}", "using": [CORE, TEST],
                      "methodCalls": [["Test/sleep", {"seconds": 1.5}, "c"]]})  # fmt: skip
        answers = [receive(ws) for _ in range(limit + 1)]
    refused = [a for a in answers if a["@type"] == "RequestError"]
    assert len(refused) == 1 and refused[0]["type"] == "urn:ietf:params:jmap:error:limit"
    assert sum(a["@type"] == "Response" for a in answers) == limit


def test_a_revoked_credential_closes_the_connection(server: Server) -> None:
    """§4.2: the server may close a connection whose credentials expired (1008)."""
    client, _ = fresh_account(server, "revoked")
    name = client.session()["username"]
    with socket(server, name) as ws:
        send(ws, echo("before"))
        assert receive(ws)["requestId"] == "before"
        jmapd(server.data, "account", "passwd", name, "--password", "changed-secret")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_a_client_that_never_reads_is_not_read_either(server: Server) -> None:
    """Bounded buffers: a client that sends request after request and never reads the
    answers is itself no longer read once twice maxConcurrentRequests are unanswered, so
    it cannot fill the server's memory with answers; other users are served meanwhile."""
    client, _ = fresh_account(server, "neverreads")
    name = client.session()["username"]
    echo_body = echo("big", payload="x" * 150_000)  # near maxSizeRequest (200,000 here)
    sent = 0
    with socket(server, name) as ws:

        def flood() -> None:
            nonlocal sent
            with contextlib.suppress(OSError, ConnectionClosed):
                for _ in range(1000):  # 150 MB, were they all read
                    send(ws, echo_body)
                    sent += 1

        flooding = threading.Thread(target=flood, daemon=True)
        flooding.start()
        try:
            time.sleep(4)
            other = server.client("alice@example.com")
            started = time.monotonic()
            assert other.call("Core/echo", {"ok": True}, [CORE])[0] == "Core/echo"
            assert time.monotonic() - started < 2
            assert sent < 200, sent  # the server stopped reading it
        finally:
            ws.socket.shutdown(2)  # not a closing handshake: the flood holds the sender
            flooding.join(10)
