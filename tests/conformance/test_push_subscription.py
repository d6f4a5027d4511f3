"""RFC 8620 §7.2 PushSubscription, with Web Push as RFC 8030/8291/8292 and RFC 9749 define it,
against a real push endpoint the test runs on loopback: it decrypts every push with the
subscription's private key (aes128gcm) and verifies the VAPID JWT against the key the session
advertises. On both backends (the test servers allow loopback push URLs:
push_allow_loopback)."""

from __future__ import annotations

import base64
import calendar
import contextlib
import os
import queue
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from tests.conformance.notes import create_one, fresh_account
from tests.conftest import (
    CORE,
    TEST,
    Client,
    QuietHandler,
    Server,
    jmapd,
    serve_http,
    start_server,
    stop_server,
)

VAPID = "urn:ietf:params:jmap:webpush-vapid"
USING = [CORE, TEST]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class Push:
    path: str
    headers: dict[str, str]
    body: bytes
    value: Any = None  # the decrypted, parsed body


@dataclass
class Device:
    """A push subscription's client side: its keys and the URL it receives at."""

    url: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def keys(self) -> dict[str, str]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


class Endpoint:
    """A push service on loopback: each path answers the status set for it (201 by default)
    and records what it got."""

    def __init__(self) -> None:
        self.received: dict[str, queue.Queue[Push]] = {}
        self.status: dict[str, int] = {}
        endpoint = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                push = Push(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                endpoint.queue(self.path).put(push)
                self.send_response(endpoint.status.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd, self.origin = serve_http(Handler)

    def queue(self, path: str) -> queue.Queue[Push]:
        return self.received.setdefault(path, queue.Queue())

    def device(self) -> Device:
        return Device(f"{self.origin}/push/{secrets.token_hex(8)}")

    def next(self, device: Device, timeout: float = 10) -> Push:
        """The next push to the device, decrypted when it has keys."""
        push = self.queue(device.url.removeprefix(self.origin)).get(timeout=timeout)
        if push.headers.get("content-encoding") == "aes128gcm":
            plain = http_ece.decrypt(push.body, private_key=device.private_key,
                                     auth_secret=device.auth, version="aes128gcm")  # fmt: skip
        else:
            plain = push.body
        push.value = orjson.loads(plain)
        return push

    def none(self, device: Device, wait: float = 2.5) -> bool:
        """True when nothing arrives for the device within `wait` seconds."""
        try:
            self.queue(device.url.removeprefix(self.origin)).get(timeout=wait)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    e.close()


def push_set(client: Client, **args: Any) -> dict[str, Any]:
    name, result = client.call("PushSubscription/set", args, USING)
    assert name == "PushSubscription/set", result
    return result


def push_get(client: Client, **args: Any) -> list[Any]:
    return client.call("PushSubscription/get", args, USING)


def subscribe(client: Client, device: Device, encrypted: bool = True,
              **properties: Any) -> dict[str, Any]:  # fmt: skip
    create = {"deviceClientId": "test-" + secrets.token_hex(4), "url": device.url,
              "keys": device.keys() if encrypted else None, **properties}  # fmt: skip
    result = push_set(client, create={"s": create})
    assert result["notCreated"] is None, result
    created: dict[str, Any] = result["created"]["s"]
    return created


def verified(client: Client, endpoint: Endpoint, device: Device, **properties: Any) -> str:
    """A subscription made and verified with the code pushed to the device; its id."""
    id = str(subscribe(client, device, **properties)["id"])
    code = endpoint.next(device).value["verificationCode"]
    result = push_set(client, update={id: {"verificationCode": code}})
    assert result["updated"] == {id: None}, result
    return id


def note(client: Client, account: str) -> str:
    """A change in the account (a new Note); the Note state after it."""
    create_one(client, account, title="pushed")
    state: str = client.ok("Note/get", {"accountId": account, "ids": []})["state"]
    return state


def parse_utc(value: str) -> float:
    return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))


def vapid_claims(push: Push) -> dict[str, Any]:
    scheme, _, params = push.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(p.split("=", 1) for p in params.split(","))
    claims: dict[str, Any] = orjson.loads(unb64url(parts["t"].split(".")[1]))
    return {**claims, "k": parts["k"]}


# -- the session ---------------------------------------------------------------------------------


def test_the_session_advertises_the_vapid_key(alice: Client) -> None:
    """RFC 9749 §3: the P-256 public key, uncompressed (65 octets, 0x04 first), base64url."""
    key = alice.session()["capabilities"][VAPID]
    assert set(key) == {"applicationServerKey"}
    point = unb64url(key["applicationServerKey"])
    assert len(point) == 65 and point[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # a point on the curve


# -- create and verify ----------------------------------------------------------------------------


def test_create_pushes_a_verification_signed_and_encrypted(
    server: Server, endpoint: Endpoint
) -> None:
    client, _ = fresh_account(server, "verify")
    device = endpoint.device()
    before = time.time()
    created = subscribe(client, device, types=None)
    # §5.3: the id, and what the server set (the defaults, the expiry it chose)
    assert set(created) == {"id", "verificationCode", "expires"}
    assert created["verificationCode"] is None
    push = endpoint.next(device)
    assert push.value == {"@type": "PushVerification", "pushSubscriptionId": created["id"],
                          "verificationCode": push.value["verificationCode"]}  # fmt: skip
    assert len(push.value["verificationCode"]) >= 32  # enough entropy not to be guessed
    # RFC 8620 §7.2 and RFC 8030 §5: JSON, a TTL; RFC 8291: aes128gcm
    assert push.headers["content-type"] == "application/json"
    assert int(push.headers["ttl"]) > 0
    assert push.headers["content-encoding"] == "aes128gcm"
    # RFC 8292 / RFC 9749 §4: signed by the key the session advertises
    claims = vapid_claims(push)
    assert claims["k"] == client.session()["capabilities"][VAPID]["applicationServerKey"]
    assert Vapid02.verify(push.headers["authorization"])
    assert claims["aud"] == endpoint.origin
    assert before < claims["exp"] <= time.time() + 24 * 3600
    assert claims["sub"].startswith("mailto:")


def test_no_state_change_before_verification(server: Server, endpoint: Endpoint) -> None:
    client, account = fresh_account(server, "unverified")
    device = endpoint.device()
    subscribe(client, device)
    endpoint.next(device)  # the verification
    note(client, account)
    assert endpoint.none(device)


def test_a_wrong_code_is_invalid_properties(server: Server, endpoint: Endpoint) -> None:
    client, _ = fresh_account(server, "wrongcode")
    device = endpoint.device()
    id = subscribe(client, device)["id"]
    endpoint.next(device)
    result = push_set(client, update={id: {"verificationCode": "0" * 32}})
    assert result["notUpdated"][id]["type"] == "invalidProperties"
    assert result["notUpdated"][id]["properties"] == ["verificationCode"]


def test_verified_subscriptions_get_state_changes(server: Server, endpoint: Endpoint) -> None:
    client, account = fresh_account(server, "verified")
    device = endpoint.device()
    verified(client, endpoint, device)
    state = note(client, account)
    push = endpoint.next(device)
    while "Note" not in push.value["changed"].get(account, {}):  # the PushSubscription change
        push = endpoint.next(device)
    assert push.value["@type"] == "StateChange"
    assert push.value["changed"][account]["Note"] == state
    assert set(push.value["changed"]) == {account}
    assert Vapid02.verify(push.headers["authorization"])


def test_types_limits_what_is_pushed(server: Server, endpoint: Endpoint) -> None:
    client, account = fresh_account(server, "types")
    device = endpoint.device()
    verified(client, endpoint, device, types=["Folder"])
    note(client, account)
    assert endpoint.none(device)
    client.ok("Folder/set", {"accountId": account, "create": {"f": {"name": "pushed"}}})
    push = endpoint.next(device)
    assert set(push.value["changed"][account]) == {"Folder"}


def test_unencrypted_when_there_are_no_keys(server: Server, endpoint: Endpoint) -> None:
    client, _ = fresh_account(server, "plain")
    device = endpoint.device()
    subscribe(client, device, encrypted=False)
    push = endpoint.next(device)
    assert "content-encoding" not in push.headers
    assert push.value["@type"] == "PushVerification"


def test_changes_are_coalesced(server: Server, endpoint: Endpoint) -> None:
    """At most one push per push_interval (1 s here), carrying the newest states."""
    client, account = fresh_account(server, "coalesce")
    device = endpoint.device()
    verified(client, endpoint, device, types=["Note"])
    states = [note(client, account) for _ in range(6)]
    pushes = [endpoint.next(device)]
    while pushes[-1].value["changed"][account]["Note"] != states[-1]:
        pushes.append(endpoint.next(device))
    assert len(pushes) < len(states)


# -- what /get and /set show, and to whom ---------------------------------------------------------


def test_get_hides_url_and_keys(server: Server, endpoint: Endpoint) -> None:
    client, _ = fresh_account(server, "hidden")
    device = endpoint.device()
    id = subscribe(client, device, types=["Email"])["id"]
    name, result = push_get(client, ids=None)
    assert name == "PushSubscription/get"
    assert set(result) == {"list", "notFound"}  # no accountId, no state
    [subscription] = result["list"]
    assert set(subscription) == {"id", "deviceClientId", "verificationCode", "expires", "types"}
    assert subscription["id"] == id and subscription["types"] == ["Email"]
    for private in ("url", "keys"):
        name, error = push_get(client, ids=None, properties=["id", private])
        assert (name, error["type"]) == ("error", "forbidden")


def test_no_account_id(server: Server, endpoint: Endpoint, ids: dict[str, str]) -> None:
    client, _ = fresh_account(server, "noaccount")
    name, error = push_get(client, accountId=ids["alice"], ids=None)
    assert (name, error["type"]) == ("error", "invalidArguments")
    result = push_set(client, create={})
    assert set(result) == {"created", "updated", "destroyed", "notCreated", "notUpdated",
                           "notDestroyed"}  # fmt: skip


def test_only_the_credential_that_made_it_sees_it(server: Server, endpoint: Endpoint) -> None:
    client, _ = fresh_account(server, "credential")
    name = client.session()["username"]
    id = subscribe(client, endpoint.device())["id"]
    token = jmapd(server.data, "token", "create", name, "--name", "phone").strip()
    other = server.client_with(token)
    assert push_get(other, ids=None)[1]["list"] == []
    assert push_get(other, ids=[id])[1]["notFound"] == [id]
    result = push_set(other, update={id: {"types": None}})
    assert result["notUpdated"][id]["type"] == "notFound"
    result = push_set(other, destroy=[id])
    assert result["notDestroyed"][id]["type"] == "notFound"
    assert push_get(client, ids=[id])[1]["list"][0]["id"] == id


def test_expires_is_bounded_and_always_returned(server: Server, endpoint: Endpoint) -> None:
    client, _ = fresh_account(server, "expires")
    created = subscribe(client, endpoint.device(), expires="2999-01-01T00:00:00Z")
    assert time.time() + 6 * 86400 < parse_utc(created["expires"]) <= time.time() + 7 * 86400 + 1
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    id = subscribe(client, endpoint.device(), expires=soon)["id"]
    assert push_get(client, ids=[id])[1]["list"][0]["expires"] == soon
    result = push_set(client, update={id: {"expires": "2999-01-01T00:00:00Z"}})
    bounded = result["updated"][id]["expires"]  # §5.3: a value other than the one asked for
    assert parse_utc(bounded) <= time.time() + 7 * 86400 + 1
    past = push_set(client, create={"p": {"deviceClientId": "d", "url": endpoint.device().url,
                                          "expires": "2000-01-01T00:00:00Z"}})  # fmt: skip
    assert past["notCreated"]["p"]["properties"] == ["expires"]


def test_bad_creates(server: Server, endpoint: Endpoint) -> None:
    client, _ = fresh_account(server, "badcreate")
    url = endpoint.device().url
    cases = {
        "code": ({"verificationCode": "x"}, ["verificationCode"]),
        "keys": ({"keys": {"p256dh": "AAAA", "auth": "AAAA"}}, ["keys"]),
        "keyset": ({"keys": {"p256dh": "x"}}, ["keys"]),
        "url": ({"url": "ftp://example.com/"}, ["url"]),
        "both": ({"url": 5, "deviceClientId": None}, ["url", "deviceClientId"]),
        "types": ({"types": ["Email", 7]}, ["types"]),
        "unknown": ({"colour": "red"}, ["colour"]),
    }
    create = {cid: {"deviceClientId": "d", "url": url, **given}
              for cid, (given, _) in cases.items()}  # fmt: skip
    result = push_set(client, create=create)
    for cid, (_, properties) in cases.items():
        error = result["notCreated"][cid]
        assert error["type"] == "invalidProperties", (cid, error)
        assert sorted(error["properties"]) == sorted(properties), (cid, error)


def test_subscriptions_are_limited_in_number_and_rate(server: Server, endpoint: Endpoint) -> None:
    """§8.7: 16 per user (max_push_subscriptions), and 16 made an hour."""
    client, _ = fresh_account(server, "many")
    url = endpoint.device().url
    result = push_set(client, create={str(i): {"deviceClientId": str(i), "url": url}
                                      for i in range(17)})  # fmt: skip
    assert len(result["created"]) == 16
    [(_, error)] = result["notCreated"].items()
    assert error["type"] == "overQuota"
    push_set(client, destroy=[c["id"] for c in result["created"].values()])
    again = push_set(client, create={"x": {"deviceClientId": "x", "url": url}})
    assert again["notCreated"]["x"]["type"] == "rateLimit"


# -- who is pushed to -----------------------------------------------------------------------------


def test_shared_accounts_push_to_their_users_only(
    server: Server, endpoint: Endpoint, ids: dict[str, str], bob: Client
) -> None:
    """alice may use bob's account: bob's changes reach alice's subscription; carol's
    subscription gets nothing of either."""
    alice, carol = server.client("alice@example.com"), server.client("carol@example.com")
    alice_device, carol_device = endpoint.device(), endpoint.device()
    alice_id = verified(alice, endpoint, alice_device, types=["Note"])
    carol_id = verified(carol, endpoint, carol_device, types=["Note"])
    try:
        state = note(bob, ids["bob"])
        push = endpoint.next(alice_device)
        assert push.value["changed"] == {ids["bob"]: {"Note": state}}
        assert endpoint.none(carol_device)
    finally:
        push_set(alice, destroy=[alice_id])
        push_set(carol, destroy=[carol_id])


def test_a_new_password_ends_the_subscription(server: Server, endpoint: Endpoint) -> None:
    client, account = fresh_account(server, "passwd")
    name = client.session()["username"]
    device = endpoint.device()
    verified(client, endpoint, device, types=["Note"])
    jmapd(server.data, "account", "passwd", name, "--password", "changed-secret")
    server.passwords[name] = "changed-secret"
    note(server.client(name), account)
    assert endpoint.none(device)


def test_a_gone_endpoint_destroys_the_subscription(server: Server, endpoint: Endpoint) -> None:
    """RFC 8030 §7.3: 404/410 means the push subscription is gone; after three in a row the
    PushSubscription is destroyed."""
    client, account = fresh_account(server, "gone")
    device = endpoint.device()
    id = verified(client, endpoint, device, types=["Note"])
    endpoint.status[device.url.removeprefix(endpoint.origin)] = 410
    for _ in range(3):
        note(client, account)
        endpoint.next(device)
    deadline = time.monotonic() + 10
    while push_get(client, ids=[id])[1]["notFound"] != [id]:
        assert time.monotonic() < deadline, "the subscription was not destroyed"
        time.sleep(0.2)


def test_a_failing_endpoint_is_tried_again(server: Server, endpoint: Endpoint) -> None:
    client, account = fresh_account(server, "retry")
    device = endpoint.device()
    verified(client, endpoint, device, types=["Note"])
    path = device.url.removeprefix(endpoint.origin)
    endpoint.status[path] = 503
    state = note(client, account)
    first = endpoint.next(device)
    endpoint.status[path] = 201
    again = endpoint.next(device)  # a second or so later
    assert first.value == again.value == {"@type": "StateChange",
                                          "changed": {account: {"Note": state}}}  # fmt: skip


# -- URLs the server will not contact ----------------------------------------------------------


@contextlib.contextmanager
def strict_server(backend: str, tmp_path: Path) -> Iterator[Client]:
    """A server with the default push_allow_loopback (false)."""
    jmapd(tmp_path, "account", "add", "strict@example.com", "--password", "strict-secret")
    server = start_server(tmp_path, {"JMAPD_PUSH_ALLOW_LOOPBACK": "false"})
    try:
        yield server.client_with(("strict@example.com", "strict-secret"))
    finally:
        stop_server(server)


def test_only_public_https_urls_are_contacted(
    backend: str, tmp_path: Path, endpoint: Endpoint
) -> None:
    """§8.7: no request into the server's own network; RFC 8620 §7.2: https:// only."""
    with strict_server(backend, tmp_path) as client:
        device = endpoint.device()
        urls = {
            "http": device.url,
            "loopback": device.url.replace("http://", "https://"),
            "private": "https://10.1.2.3/push",
            "linklocal": "https://169.254.169.254/latest/meta-data",
            "localhost": "https://localhost/push",
            "v6": "https://[::1]/push",
        }
        result = push_set(client, create={k: {"deviceClientId": k, "url": u}
                                          for k, u in urls.items()})  # fmt: skip
        for key in urls:
            assert result["notCreated"][key]["properties"] == ["url"], (key, result)
        assert endpoint.none(device, wait=1)


def test_one_push_per_change_with_two_workers(
    backend: str, tmp_path: Path, endpoint: Endpoint
) -> None:
    """The workers elect one to deliver: a change made through any is pushed once."""
    jmapd(tmp_path, "account", "add", "two@example.com", "--password", "two-secret")
    server = start_server(tmp_path, {"JMAPD_WORKERS": "2"})
    try:
        clients = [server.client_with(("two@example.com", "two-secret")) for _ in range(4)]
        account = clients[0].session()["primaryAccounts"][TEST]
        device = endpoint.device()
        verified(clients[0], endpoint, device, types=["Note"])
        states = []
        for client in clients:  # new connections: both workers take some
            states.append(note(client, account))
            time.sleep(1.5)  # beyond push_interval: one push per change
        got = []
        while not got or got[-1] != states[-1]:
            got.append(endpoint.next(device).value["changed"][account]["Note"])
        assert got == states
        assert endpoint.none(device, wait=2)
    finally:
        stop_server(server)


def test_the_vapid_key_is_the_stores_not_the_process(backend: str, tmp_path: Path) -> None:
    """RFC 9749 §4: pushes are signed with the key the subscription was made under, so every
    worker and node (and every restart) has the same one."""
    jmapd(tmp_path, "account", "add", "key@example.com", "--password", "key-secret")
    keys = []
    for _ in range(2):
        server = start_server(tmp_path)
        try:
            session = server.client_with(("key@example.com", "key-secret")).session()
            keys.append(session["capabilities"][VAPID]["applicationServerKey"])
        finally:
            stop_server(server)
    assert keys[0] == keys[1]
    assert os.stat(tmp_path).st_mode & 0o077 == 0
