"""RFC 8620 §3.6.2: method-level errors, and Core/echo (§4).

A method-level error is ["error", {"type": …}, callId] at its place in methodResponses; it
never becomes an HTTP error, and the calls after it run as normal.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import CORE, TEST, TEST_PERSONAL, USING, Client, Server


def assert_error(response: list[Any], type: str, call_id: str = "c0") -> dict[str, Any]:
    """§3.6.2: the response name is "error" and it has the exact type (and maybe a
    description)."""
    name, args, rid = response
    assert (name, rid) == ("error", call_id), response
    assert args["type"] == type, args
    assert set(args) <= {"type", "description"}, args
    assert isinstance(args.get("description", ""), str)
    return dict(args)


def error_of(client: Client, name: str, args: dict[str, Any], using: list[str] = USING) -> str:
    """The error type of one call (with an echo after it, which must still run)."""
    calls = [[name, args, "c0"], ["Core/echo", {"after": True}, "c1"]]
    responses = client.request(calls, using)["methodResponses"]
    assert len(responses) == 2, responses
    assert responses[1] == ["Core/echo", {"after": True}, "c1"]
    assert responses[0][0] == "error", responses[0]
    assert_error(responses[0], responses[0][1]["type"])
    return str(responses[0][1]["type"])


def note_state(client: Client, account_id: str) -> str:
    return str(client.ok("Note/get", {"accountId": account_id, "ids": []})["state"])


# §4: Core/echo


def test_echo_returns_exactly_its_arguments(alice: Client) -> None:
    """§4.1: the RFC's own example."""
    response = alice.request([["Core/echo", {"hello": True, "high": 5}, "b3ff"]])
    assert response["methodResponses"] == [["Core/echo", {"hello": True, "high": 5}, "b3ff"]]


def test_echo_keeps_every_json_value(alice: Client) -> None:
    """§4: "returns exactly the same arguments as it is given", whatever they are (and with
    no accountId, which it does not take)."""
    args: dict[str, Any] = {
        "null": None,
        "false": False,
        "int": -(2**53) + 1,
        "float": 1.5,
        "string": 'ü\u2028"\\/</script>',
        "empty": {},
        "list": [[], [{}], [1, "2", None]],
        "accountId": "nonsense",
        "": "empty key",
    }
    response = alice.request([["Core/echo", args, "x"], ["Core/echo", {}, "y"]])
    assert response["methodResponses"] == [["Core/echo", args, "x"], ["Core/echo", {}, "y"]]


def test_echo_in_core_only_request(alice: Client) -> None:
    """§3.3: using with only the core capability is enough for Core/echo."""
    response = alice.request([["Core/echo", {"a": 1}, "c"]], using=[CORE])
    assert response["methodResponses"] == [["Core/echo", {"a": 1}, "c"]]


# §3.6.2 unknownMethod


def test_unknown_method(alice: Client) -> None:
    """§3.6.2 unknownMethod, inserted at the current point; the next call runs (§3.4.1)."""
    response = alice.request(
        [
            ["Core/echo", {"n": 1}, "c1"],
            ["Foo/bar", {}, "c2"],
            ["Core/echo", {"n": 3}, "c3"],
        ]
    )
    responses = response["methodResponses"]
    assert responses[0] == ["Core/echo", {"n": 1}, "c1"]
    assert_error(responses[1], "unknownMethod", "c2")
    assert responses[2] == ["Core/echo", {"n": 3}, "c3"]
    assert len(responses) == 3


def test_method_names_are_case_sensitive(alice: Client) -> None:
    """§3.2: the name is a String; "core/echo" is not "Core/echo"."""
    assert error_of(alice, "core/echo", {}) == "unknownMethod"
    assert error_of(alice, "Core/Echo", {}) == "unknownMethod"
    assert error_of(alice, "", {}) == "unknownMethod"


def test_known_method_without_its_capability_in_using(alice: Client, ids: dict[str, str]) -> None:
    """§3.3: a method of a capability the client did not ask for in using is unknown to this
    request (§3.6.2 unknownMethod)."""
    args = {"accountId": ids["alice"], "ids": []}
    assert error_of(alice, "Note/get", args, using=[CORE]) == "unknownMethod"
    assert error_of(alice, "Note/get", args, using=[CORE, TEST_PERSONAL]) == "unknownMethod"
    assert error_of(alice, "Setting/get", args, using=[CORE, TEST]) == "unknownMethod"
    assert error_of(alice, "Test/fail", {}, using=[CORE]) == "unknownMethod"
    # With the capability, the same calls work.
    assert alice.call("Note/get", args, using=[CORE, TEST])[0] == "Note/get"
    assert alice.call("Setting/get", args, using=[CORE, TEST_PERSONAL])[0] == "Setting/get"


# §3.6.2 invalidArguments (and §3.9: "unknown/insufficient/wrong type for data")


def test_unknown_argument(alice: Client, ids: dict[str, str]) -> None:
    assert error_of(alice, "Note/get", {"accountId": ids["alice"], "foo": 1}) == (
        "invalidArguments"
    )
    assert error_of(alice, "Note/query", {"accountId": ids["alice"], "sorted": []}) == (
        "invalidArguments"
    )


def test_argument_of_the_wrong_type(alice: Client, ids: dict[str, str]) -> None:
    account = ids["alice"]
    args: dict[str, Any]
    for args in (
        {"accountId": account, "ids": "abc"},
        {"accountId": account, "ids": [1]},
        {"accountId": account, "ids": ["not an id!"]},
        {"accountId": account, "properties": "title"},
        {"accountId": account, "properties": ["noSuchProperty"]},
    ):
        assert error_of(alice, "Note/get", args) == "invalidArguments", args
    for args in (
        {"accountId": account, "limit": -1},
        {"accountId": account, "position": "0"},
        {"accountId": account, "calculateTotal": 1},
        {"accountId": account, "filter": []},
    ):
        assert error_of(alice, "Note/query", args) == "invalidArguments", args
    assert error_of(alice, "Note/set", {"accountId": account, "create": []}) == ("invalidArguments")


def test_missing_or_malformed_account_id(alice: Client) -> None:
    """accountId is required (no default, §3.5); a wrong type is invalid too."""
    assert error_of(alice, "Note/get", {"ids": []}) == "invalidArguments"
    assert error_of(alice, "Note/get", {"accountId": None, "ids": []}) == "invalidArguments"
    assert error_of(alice, "Note/get", {"accountId": 1, "ids": []}) == "invalidArguments"
    assert error_of(alice, "Note/set", {}) == "invalidArguments"


def test_missing_required_argument(alice: Client, ids: dict[str, str]) -> None:
    """§5.2: sinceState has no default."""
    assert error_of(alice, "Note/changes", {"accountId": ids["alice"]}) == "invalidArguments"


# §3.7 invalidResultReference, and invalidArguments for foo together with #foo


def reference_error(client: Client, account: str, reference: Any) -> list[Any]:
    """The response to a Note/get whose #ids is `reference`, after a call "q" that answered
    {"ids": ["a", "b", "c"], "state": "s1"} (a Core/echo)."""
    source = {"ids": ["a", "b", "c"], "state": "s1"}
    responses = client.request(
        [
            ["Core/echo", source, "q"],
            ["Note/get", {"accountId": account, "#ids": reference}, "g"],
            ["Core/echo", {}, "e"],
        ]
    )["methodResponses"]
    assert responses[0] == ["Core/echo", source, "q"]
    assert responses[2] == ["Core/echo", {}, "e"]
    return list(responses[1])


def test_invalid_result_references(alice: Client, ids: dict[str, str]) -> None:
    """§3.7: "If any result reference fails to resolve, the whole method MUST be rejected with
    an invalidResultReference error"."""
    good = {"resultOf": "q", "name": "Core/echo", "path": "/ids"}
    response = reference_error(alice, ids["alice"], good)
    assert response[0] == "Note/get"
    assert response[1]["notFound"] == ["a", "b", "c"]
    response = reference_error(alice, ids["alice"], {**good, "path": "/ids/2"})
    assert response[0] == "error"  # "c" is not a list: invalidArguments for ids
    assert_error(response, "invalidArguments", "g")
    bad = {
        "unknown resultOf": {**good, "resultOf": "nope"},
        "resultOf a later call": {**good, "resultOf": "e"},
        "resultOf itself": {**good, "resultOf": "g"},
        "wrong name": {**good, "name": "Note/get"},
        "name of a different case": {**good, "name": "core/echo"},
        "path to a missing property": {**good, "path": "/nothing"},
        "path not a pointer": {**good, "path": "ids"},
        "path through a string": {**good, "path": "/state/x"},
        "index past the end": {**good, "path": "/ids/100000"},
        "index not a number": {**good, "path": "/ids/first"},
        "index with a leading zero": {**good, "path": "/ids/01"},
        "index -": {**good, "path": "/ids/-"},
        "missing path": {"resultOf": "q", "name": "Core/echo"},
        "missing name": {"resultOf": "q", "path": "/ids"},
        "missing resultOf": {"name": "Core/echo", "path": "/ids"},
        "path not a string": {**good, "path": ["ids"]},
        "reference a string": "/ids",
        "reference a list": [good],
        "reference null": None,
    }
    for why, reference in bad.items():
        response = reference_error(alice, ids["alice"], reference)
        assert response[0] == "error", why
        assert_error(response, "invalidResultReference", "g")


def test_reference_to_an_error_response(alice: Client, ids: dict[str, str]) -> None:
    """§3.7 step 2: a call that failed answered "error", so a reference naming its method
    does not resolve."""
    responses = alice.request(
        [
            ["Note/query", {"accountId": "nope"}, "q"],
            [
                "Note/get",
                {
                    "accountId": ids["alice"],
                    "#ids": {"resultOf": "q", "name": "Note/query", "path": "/ids"},
                },
                "g",
            ],
        ]
    )["methodResponses"]
    assert_error(responses[0], "accountNotFound", "q")
    assert_error(responses[1], "invalidResultReference", "g")


def test_argument_and_its_reference_together(alice: Client, ids: dict[str, str]) -> None:
    """§3.7: "If an arguments object contains the same argument name in normal and referenced
    form (e.g., foo and #foo), the method MUST return an invalidArguments error." """
    reference = {"resultOf": "q", "name": "Note/query", "path": "/ids"}
    for args in (
        {"accountId": ids["alice"], "ids": [], "#ids": reference},
        {"#ids": reference, "accountId": ids["alice"], "ids": []},
    ):
        responses = alice.request(
            [["Note/query", {"accountId": ids["alice"]}, "q"], ["Note/get", args, "g"]]
        )["methodResponses"]
        assert_error(responses[1], "invalidArguments", "g")


# §3.6.2 account errors


def test_account_not_found(alice: Client, bob: Client, ids: dict[str, str]) -> None:
    """§3.6.2 accountNotFound: an unknown id, and an account the user has no access to."""
    assert error_of(alice, "Note/get", {"accountId": "nosuchaccount", "ids": []}) == (
        "accountNotFound"
    )
    assert error_of(alice, "Note/set", {"accountId": "nosuchaccount"}) == "accountNotFound"
    assert error_of(bob, "Note/get", {"accountId": ids["alice"], "ids": []}) == "accountNotFound"
    assert error_of(bob, "Note/query", {"accountId": ids["alice"]}) == "accountNotFound"
    assert error_of(bob, "Note/get", {"accountId": ids["carol"], "ids": []}) == "accountNotFound"


def test_account_not_supported_by_method(alice: Client, ids: dict[str, str]) -> None:
    """§3.6.2 accountNotSupportedByMethod: Setting (urn:jmapd:test:personal) exists only in
    the user's own account; bob's account, which alice may use, does not support it."""
    args = {"accountId": ids["bob"], "ids": []}
    assert error_of(alice, "Setting/get", args) == "accountNotSupportedByMethod"
    assert error_of(alice, "Setting/set", {"accountId": ids["bob"]}) == (
        "accountNotSupportedByMethod"
    )
    assert alice.ok("Setting/get", {"accountId": ids["alice"], "ids": []})["list"] == []
    assert alice.ok("Note/get", args)["list"] == []


def test_account_read_only(alice: Client, ids: dict[str, str]) -> None:
    """§3.6.2 accountReadOnly: alice has read-only access to carol's account (isReadOnly in
    the session); reading works, writing is refused and changes nothing."""
    assert alice.session()["accounts"][ids["carol"]]["isReadOnly"] is True
    before = note_state(alice, ids["carol"])
    create = {"accountId": ids["carol"], "create": {"n1": {"title": "no"}}}
    assert error_of(alice, "Note/set", create) == "accountReadOnly"
    assert error_of(alice, "Note/set", {"accountId": ids["carol"]}) == "accountReadOnly"
    assert note_state(alice, ids["carol"]) == before
    assert alice.ok("Note/query", {"accountId": ids["carol"]})["accountId"] == ids["carol"]


def test_read_only_token_is_forbidden_to_write(server: Server, ids: dict[str, str]) -> None:
    """§3.6.2 forbidden: "executing the method would violate an ... permissions policy": a
    read-only API token may read but not write, in any account; nothing changes."""
    reader = server.client_with(server.tokens["read-only"])
    before = note_state(reader, ids["alice"])
    create = {"accountId": ids["alice"], "create": {"n1": {"title": "no"}}}
    assert error_of(reader, "Note/set", create) == "forbidden"
    assert error_of(reader, "Note/set", {**create, "accountId": ids["bob"]}) == "forbidden"
    assert error_of(reader, "Setting/set", {"accountId": ids["alice"]}) == "forbidden"
    assert note_state(reader, ids["alice"]) == before
    assert reader.ok("Note/get", {"accountId": ids["alice"], "ids": []})["list"] == []
    assert reader.ok("Note/query", {"accountId": ids["bob"]})["accountId"] == ids["bob"]
    # The same write with a normal token of the same user succeeds.
    writer = server.client_with(server.tokens["full"])
    created = writer.ok("Note/set", create)["created"]
    assert list(created) == ["n1"]
    writer.ok("Note/set", {"accountId": ids["alice"], "destroy": [created["n1"]["id"]]})


# §3.6.2 serverFail


def test_server_fail_affects_only_its_call(alice: Client) -> None:
    """§3.6.2 serverFail: a bug in a handler fails that call only; the batch goes on."""
    responses = alice.request(
        [
            ["Core/echo", {"n": 1}, "c1"],
            ["Test/fail", {}, "c2"],
            ["Core/echo", {"n": 3}, "c3"],
            ["Test/fail", {}, "c4"],
        ]
    )["methodResponses"]
    assert responses[0] == ["Core/echo", {"n": 1}, "c1"]
    args = assert_error(responses[1], "serverFail", "c2")
    assert "Traceback" not in args.get("description", "")
    assert responses[2] == ["Core/echo", {"n": 3}, "c3"]
    assert_error(responses[3], "serverFail", "c4")
    assert len(responses) == 4


# §3.6.2, §3.4: every error in one batch, in order


def test_batch_continues_after_every_error(alice: Client, ids: dict[str, str]) -> None:
    """§3.6.2: "Any further method calls in the request MUST then be processed as normal";
    §3.4: responses in the order the calls were processed, each with its call id."""
    reference = {"resultOf": "nope", "name": "Note/query", "path": "/ids"}
    calls = [
        ["Foo/bar", {}, "unknownMethod"],
        ["Note/get", {"accountId": ids["alice"], "bogus": 1}, "invalidArguments"],
        ["Note/get", {"accountId": ids["alice"], "#ids": reference}, "invalidResultReference"],
        ["Note/get", {"accountId": "nosuchaccount"}, "accountNotFound"],
        ["Setting/get", {"accountId": ids["bob"]}, "accountNotSupportedByMethod"],
        ["Note/set", {"accountId": ids["carol"]}, "accountReadOnly"],
        ["Test/fail", {}, "serverFail"],
        ["Core/echo", {"last": True}, "done"],
    ]
    responses = alice.request(calls)["methodResponses"]
    assert [r[2] for r in responses] == [c[2] for c in calls]
    for response in responses[:-1]:
        assert_error(response, response[2], response[2])
    assert responses[-1] == ["Core/echo", {"last": True}, "done"]


def test_same_call_id_twice(alice: Client) -> None:
    """§3.2: the call id is echoed back as given, even when the client repeats one."""
    responses = alice.request(
        [["Core/echo", {"n": 1}, "same"], ["Foo/bar", {}, "same"], ["Core/echo", {}, ""]]
    )["methodResponses"]
    assert responses[0] == ["Core/echo", {"n": 1}, "same"]
    assert_error(responses[1], "unknownMethod", "same")
    assert responses[2] == ["Core/echo", {}, ""]


def test_method_errors_are_not_http_errors(alice: Client) -> None:
    """§3.6.2: "Errors at the method level MUST NOT generate an HTTP-level error." """
    r = alice.post({"using": USING, "methodCalls": [["Test/fail", {}, "c"], ["X/y", {}, "d"]]})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert [m[0] for m in r.json()["methodResponses"]] == ["error", "error"]
