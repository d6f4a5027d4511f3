"""RFC 8620 §3.3, §3.6.1: request-level errors, answered as RFC 7807 problem details.

Every bad request is followed by a good one: the server must keep serving.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import CORE, TEST, USING, Client, Server

PROBLEM = "urn:ietf:params:jmap:error:"


def limits(client: Client) -> dict[str, Any]:
    return dict(client.session()["capabilities"][CORE])


def assert_problem(r: httpx.Response, type: str, status: int, **extra: Any) -> dict[str, Any]:
    """§3.6.1: problem JSON with the exact type, the HTTP status and a detail."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert set(body) == {"type", "status", "detail", *extra}, body
    assert body["type"] == PROBLEM + type
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    for key, value in extra.items():
        assert body[key] == value
    return dict(body)


def assert_still_serving(client: Client) -> None:
    response = client.request([["Core/echo", {"alive": True}, "e"]])
    assert response["methodResponses"] == [["Core/echo", {"alive": True}, "e"]]


def post_raw(
    client: Client, body: bytes, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return client.http.post("/jmap/api", content=body, headers=headers)


def request_bytes(args: str = "{}") -> bytes:
    """A valid Request whose one Core/echo call has `args` (raw JSON) as its arguments."""
    return b'{"using": ["%s"], "methodCalls": [["Core/echo", %s, "c1"]]}' % (
        CORE.encode(),
        args.encode(),
    )


# §3.1: "The request MUST be of type application/json"; §3.6.1 notJSON: "The content type of
# the request was not application/json or the request did not parse as I-JSON."
NOT_JSON = {
    "content type text/plain": (request_bytes(), "text/plain"),
    "content type form": (request_bytes(), "application/x-www-form-urlencoded"),
    "content type json-ish": (request_bytes(), "application/jsonx"),
    "invalid JSON": (b'{"using": [', "application/json"),
    "trailing garbage": (request_bytes() + b" }", "application/json"),
    "empty body": (b"", "application/json"),
    "single quotes": (b"{'using': []}", "application/json"),
    "not UTF-8": (request_bytes('{"x": "@"}').replace(b"@", b"\xff"), "application/json"),
    "lone surrogate": (request_bytes('{"x": "\\ud800"}'), "application/json"),
    "5000 nested arrays": (
        request_bytes('{"x": ' + "[" * 5000 + "]" * 5000 + "}"),
        "application/json",
    ),
}


@pytest.mark.parametrize("body,content_type", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_not_json(alice: Client, body: bytes, content_type: str | None) -> None:
    """§3.6.1 notJSON."""
    r = post_raw(alice, body, content_type)
    assert r.request.headers.get("content-type") == content_type
    assert_problem(r, "notJSON", 400)
    assert_still_serving(alice)


def test_no_content_type_is_read_as_json(alice: Client) -> None:
    """Ruling (issue 9): a JSON body with no Content-Type at all is accepted (a TypeScript
    client library sends none); a wrong one stays notJSON (above)."""
    r = post_raw(alice, request_bytes('{"a": 1}'), None)
    assert r.request.headers.get("content-type") is None
    assert r.status_code == 200, r.text
    assert r.json()["methodResponses"] == [["Core/echo", {"a": 1}, "c1"]]


@pytest.mark.parametrize("using", [[], [TEST]], ids=["empty", "without core"])
def test_using_without_a_methods_capability(alice: Client, using: list[str]) -> None:
    """Ruling (issue 9): `using: []` is a valid request, and so is one without core; each
    call whose capability is not in using fails with unknownMethod (§3.6.2), the rest run."""
    r = alice.post({"using": using, "methodCalls": [ECHO, ["Core/echo", {"b": 2}, "c2"]]})
    assert r.status_code == 200, r.text
    responses = r.json()["methodResponses"]
    assert [(name, args["type"], call_id) for name, args, call_id in responses] == [
        ("error", "unknownMethod", "c1"),
        ("error", "unknownMethod", "c2"),
    ]


def test_json_content_type_with_parameters_is_accepted(alice: Client) -> None:
    """§3.1: application/json with a charset parameter is still application/json."""
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        r = post_raw(alice, request_bytes('{"a": 1}'), content_type)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json()["methodResponses"] == [["Core/echo", {"a": 1}, "c1"]]


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [255, 300, 1000])
def test_deep_nesting_is_answered_or_refused(alice: Client, depth: int) -> None:
    """§3.6.1, RFC 8259 §9: a parser may limit nesting depth; a request past the server's
    limit is notJSON (like 5000 levels above). Either it is refused so, or it is answered in
    full: never a server error after its methods ran."""
    r = post_raw(alice, request_bytes('{"x": ' + "[" * depth + '"leaf"' + "]" * depth + "}"))
    if r.status_code == 200:
        assert r.json()["methodResponses"] == [["Core/echo", {"x": nested(depth)}, "c1"]]
    else:
        assert_problem(r, "notJSON", 400)
    assert_still_serving(alice)


def test_nesting_within_reason_is_accepted(alice: Client) -> None:
    """§3.1: a request nested a little deep is still a request (the depth limit is a guard)."""
    value = nested(100)
    response = alice.request([["Core/echo", {"x": value}, "c1"]])
    assert response["methodResponses"] == [["Core/echo", {"x": value}, "c1"]]


# §3.6.1 notRequest: "The request parsed as JSON but did not match the type signature of the
# Request object" (§3.3: using String[], methodCalls Invocation[], createdIds Id[Id]).
ECHO = ["Core/echo", {}, "c1"]
NOT_REQUEST: dict[str, Any] = {
    "body is an array": [[CORE], [ECHO]],
    "body is a string": "using",
    "body is null": None,
    "body is a number": 3,
    "using missing": {"methodCalls": [ECHO]},
    "using not a list": {"using": CORE, "methodCalls": [ECHO]},
    "using null": {"using": None, "methodCalls": [ECHO]},
    "using item not a string": {"using": [CORE, 5], "methodCalls": [ECHO]},
    "methodCalls missing": {"using": [CORE]},
    "methodCalls not a list": {"using": [CORE], "methodCalls": {"c1": ECHO}},
    "methodCalls null": {"using": [CORE], "methodCalls": None},
    "call with 2 items": {"using": [CORE], "methodCalls": [["Core/echo", {}]]},
    "call with 4 items": {"using": [CORE], "methodCalls": [["Core/echo", {}, "c1", "x"]]},
    "call is an object": {
        "using": [CORE],
        "methodCalls": [{"name": "Core/echo", "arguments": {}, "id": "c1"}],
    },
    "call is a string": {"using": [CORE], "methodCalls": ["Core/echo"]},
    "name not a string": {"using": [CORE], "methodCalls": [[7, {}, "c1"]]},
    "arguments an array": {"using": [CORE], "methodCalls": [["Core/echo", [], "c1"]]},
    "arguments null": {"using": [CORE], "methodCalls": [["Core/echo", None, "c1"]]},
    "call id not a string": {"using": [CORE], "methodCalls": [["Core/echo", {}, 1]]},
    "bad call after good ones": {"using": [CORE], "methodCalls": [ECHO, ECHO, ["x", {}, None]]},
    "createdIds a list": {"using": [CORE], "methodCalls": [ECHO], "createdIds": ["a"]},
    "createdIds a string": {"using": [CORE], "methodCalls": [ECHO], "createdIds": "a"},
    "createdIds value not a string": {
        "using": [CORE],
        "methodCalls": [ECHO],
        "createdIds": {"k1": 5},
    },
}


@pytest.mark.parametrize("body", NOT_REQUEST.values(), ids=NOT_REQUEST.keys())
def test_not_request(alice: Client, body: Any) -> None:
    """§3.6.1 notRequest."""
    assert_problem(post_raw(alice, orjson.dumps(body)), "notRequest", 400)
    assert_still_serving(alice)


def test_huge_json_string_is_not_a_request(alice: Client) -> None:
    """§3.6.1: a body that is one (large, valid) JSON string parses as JSON, so it is
    notRequest, not notJSON; it must not be echoed back in the detail."""
    size = limits(alice)["maxSizeRequest"] - 100
    r = post_raw(alice, orjson.dumps("x" * size))
    body = assert_problem(r, "notRequest", 400)
    assert len(body["detail"]) < 1000
    assert_still_serving(alice)


def test_huge_invalid_body_is_not_json(alice: Client) -> None:
    """§3.6.1 notJSON for a large body just under maxSizeRequest; the detail stays short."""
    size = limits(alice)["maxSizeRequest"] - 100
    r = post_raw(alice, b'"' + b"x" * size)  # an unterminated string
    body = assert_problem(r, "notJSON", 400)
    assert len(body["detail"]) < 1000
    assert_still_serving(alice)


def test_unknown_capability(alice: Client) -> None:
    """§3.6.1 unknownCapability: a capability in using that the server does not support."""
    unknown = "https://example.com/apis/foobar"
    r = alice.post({"using": [CORE, unknown], "methodCalls": [ECHO]})
    body = assert_problem(r, "unknownCapability", 400)
    assert unknown in body["detail"]
    assert_still_serving(alice)


def test_capability_in_using_but_unused_is_fine(alice: Client) -> None:
    """§3.3: "The client MAY include capability identifiers even if the method calls it makes
    do not utilise those capabilities." """
    response = alice.request([["Core/echo", {}, "c1"]], using=USING)
    assert response["methodResponses"] == [["Core/echo", {}, "c1"]]


def test_unknown_request_properties_are_ignored(alice: Client) -> None:
    """§3.3: "a server MUST ignore any other properties it does not understand on the JMAP
    Request object"."""
    r = alice.post(
        {
            "using": [CORE],
            "methodCalls": [["Core/echo", {"a": 1}, "c1"]],
            "futureExtension": {"anything": [1, 2, 3]},
            "x-vendor": None,
        }
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"methodResponses", "sessionState"}
    assert body["methodResponses"] == [["Core/echo", {"a": 1}, "c1"]]


def test_empty_method_calls_is_a_request(alice: Client) -> None:
    """§3.3: methodCalls is an Invocation[]; an empty one is a valid request."""
    response = alice.request([])
    assert response["methodResponses"] == []
    assert response["sessionState"] == alice.session()["state"]


def test_max_calls_in_request(alice: Client) -> None:
    """§3.6.1 limit: more calls than maxCallsInRequest; the limit property names it."""
    most = limits(alice)["maxCallsInRequest"]
    calls = [["Core/echo", {"i": i}, f"c{i}"] for i in range(most)]
    response = alice.request(calls)
    assert response["methodResponses"] == calls
    r = alice.post({"using": [CORE], "methodCalls": [*calls, ["Core/echo", {}, "extra"]]})
    assert_problem(r, "limit", 400, limit="maxCallsInRequest")
    assert_still_serving(alice)


def padded_request(size: int) -> bytes:
    """A valid one-call request of exactly `size` octets (padded with JSON whitespace)."""
    body = request_bytes('{"pad": true}')
    assert len(body) <= size
    return body + b" " * (size - len(body))


def test_max_size_request(alice: Client) -> None:
    """§3.6.1 limit maxSizeRequest (status as in the RFC's example): a body of exactly the
    limit is processed, one octet more is not."""
    most = limits(alice)["maxSizeRequest"]
    r = post_raw(alice, padded_request(most))
    assert r.status_code == 200, r.text
    assert r.json()["methodResponses"] == [["Core/echo", {"pad": True}, "c1"]]
    r = post_raw(alice, padded_request(most + 1))
    assert_problem(r, "limit", 400, limit="maxSizeRequest")
    # The rest of the body is not read: the server closes the connection and says so.
    assert r.headers["connection"] == "close"
    assert_still_serving(alice)


def test_max_size_request_without_content_length(alice: Client) -> None:
    """§3.6.1 limit maxSizeRequest for a chunked body that declares no length."""
    most = limits(alice)["maxSizeRequest"]
    body = padded_request(most * 2)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 16384):
            yield body[start : start + 16384]

    r = alice.http.post("/jmap/api", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, "limit", 400, limit="maxSizeRequest")
    assert r.headers["connection"] == "close"
    assert_still_serving(alice)


def test_max_concurrent_requests(server: Server, alice: Client) -> None:
    """§3.6.1 limit maxConcurrentRequests: with that many requests in progress, one more is
    refused (429) and the others are processed; afterwards the server accepts requests again."""
    most = limits(alice)["maxConcurrentRequests"]
    auth = ("alice@example.com", server.passwords["alice@example.com"])
    body = {"using": USING, "methodCalls": [["Test/sleep", {"seconds": 1.5}, "s"]]}
    start = threading.Barrier(most + 1)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=server.base, auth=auth, timeout=30) as http:
            start.wait()
            r = http.post("/jmap/api", json=body)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one) for _ in range(most + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [r for r in results if r.status_code != 200]
    assert len(results) == most + 1
    assert len(refused) == 1, [r.text for r in refused]
    assert_problem(refused[0], "limit", 429, limit="maxConcurrentRequests")
    for r in results:
        if r.status_code == 200:
            assert r.json()["methodResponses"] == [["Test/sleep", {}, "s"]]
    assert_still_serving(alice)
