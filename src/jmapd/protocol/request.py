"""The Request object (RFC 8620 §3.3), result references (§3.7) and the dispatcher."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..store.base import Busy
from .errors import MethodError, RequestError, invalid_arguments
from .registry import CORE, Context, Method, Registry

log = logging.getLogger("jmapd.api")

# RFC 6901 §4 array-index: ASCII digits, no leading zero (bounded: longer cannot be an index).
ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")


@dataclass
class Request:
    using: frozenset[str]
    calls: list[tuple[str, dict[str, Any], str]]
    created_ids: dict[str, str] | None


def parse_request(body: bytes, content_type: str, registry: Registry, max_calls: int) -> Request:
    """Check a request body; raise the request-level error for the first problem (§3.6.1).
    A body sent with no Content-Type at all is read as JSON (some client libraries send none);
    any other type than application/json is notJSON."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in ("application/json", ""):
        raise RequestError("notJSON", 400, "the Content-Type must be application/json")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RequestError("notJSON", 400, f"the body is not valid I-JSON: {e}") from None
    try:
        # orjson reads 1024 levels of nesting but writes only 254: refuse what could not be
        # answered (RFC 8259 §9 lets a parser limit the depth), before any method runs.
        orjson.dumps(data)
    except orjson.JSONEncodeError:
        raise RequestError("notJSON", 400, "the JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise RequestError("notRequest", 400, "the request must be a JSON object")
    using, calls, created_ids = data.get("using"), data.get("methodCalls"), data.get("createdIds")
    if not isinstance(using, list) or not all(isinstance(u, str) for u in using):
        raise RequestError("notRequest", 400, "using must be an array of capability strings")
    if not isinstance(calls, list) or not all(_is_invocation(c) for c in calls):
        raise RequestError(
            "notRequest", 400, "methodCalls must be an array of [name, arguments, callId]"
        )
    if created_ids is not None and not (
        isinstance(created_ids, dict) and all(isinstance(v, str) for v in created_ids.values())
    ):
        raise RequestError("notRequest", 400, "createdIds must map creation ids to ids")
    unknown = [u for u in using if u not in registry.capabilities]
    if unknown:
        raise RequestError(
            "unknownCapability", 400, f"this server does not support {', '.join(unknown)}"
        )
    if len(calls) > max_calls:
        raise RequestError(
            "limit",
            400,
            f"{len(calls)} method calls; the limit is {max_calls}",
            limit="maxCallsInRequest",
        )
    return Request(frozenset(using), [(c[0], c[1], c[2]) for c in calls], created_ids)


def _is_invocation(call: Any) -> bool:
    return (
        isinstance(call, list)
        and len(call) == 3
        and isinstance(call[0], str)
        and isinstance(call[1], dict)
        and isinstance(call[2], str)
    )


def needs_store(request: Request, registry: Registry) -> bool:
    """False when every call can be answered without the store (on the event loop)."""
    for name, _, _ in request.calls:
        method = registry.methods.get(name)
        if method is None or method.needs_store:
            return True
    return False


Observer = Callable[[str, list[tuple[str, dict[str, Any]]]], None]


def run(ctx: Context, request: Request, observe: Observer | None = None) -> dict[str, Any]:
    """Process the calls in order (§3.3); an error in one call does not stop the next.
    `observe` is told each call's name and responses (metrics)."""
    responses: list[list[Any]] = []
    if request.created_ids:
        ctx.created_ids.update(request.created_ids)
    for name, args, call_id in request.calls:
        try:
            results = call(ctx, name, resolve_references(args, responses))
        except MethodError as e:
            results = [("error", e.to_json())]
        except Busy:
            # §3.6.2: "Attempting the same operation later ... may succeed."
            description = "the account is busy with other writes; try again shortly"
            results = [("error", {"type": "serverUnavailable", "description": description})]
        except Exception:
            log.exception("method %s failed", name)
            results = [("error", {"type": "serverFail", "description": "internal error"})]
        if observe is not None:
            observe(name, results)
        responses.extend([rname, rargs, call_id] for rname, rargs in results)
    out: dict[str, Any] = {"methodResponses": responses}
    if request.created_ids is not None:
        out["createdIds"] = ctx.created_ids
    return out


def call(ctx: Context, name: str, args: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    method = ctx.registry.methods.get(name)
    if method is None:
        raise MethodError("unknownMethod", f"there is no method {name!r}")
    if method.capability not in ctx.using:
        raise MethodError("unknownMethod", f"{name} needs {method.capability} in using")
    check_account(ctx, method, args)
    result = method.handler(ctx, args)
    return [(name, result)] if isinstance(result, dict) else result


def check_account(ctx: Context, method: Method, args: dict[str, Any]) -> None:
    """Account lookup and access checks, once for every method (§3.6.2)."""
    if method.account_argument is None:
        return
    account_id = args.get(method.account_argument)
    if not isinstance(account_id, str):
        raise invalid_arguments(f"{method.account_argument} must be an account id")
    access = ctx.account(account_id, writes=method.writes)
    if method.capability != CORE and method.capability not in ctx.registry.account_capabilities(
        access
    ):
        raise MethodError(
            "accountNotSupportedByMethod", f"account {account_id} does not support {method.name}"
        )


def resolve_references(args: dict[str, Any], responses: list[list[Any]]) -> dict[str, Any]:
    """Replace every `#name` argument by the value its ResultReference points to (§3.7)."""
    if not any(key.startswith("#") for key in args):
        return args
    out = {}
    for key, value in args.items():
        if not key.startswith("#"):
            out[key] = value
            continue
        if key[1:] in args:
            raise invalid_arguments(f"both {key[1:]!r} and {key!r} are given")
        out[key[1:]] = _resolve(value, responses)
    return out


def _resolve(ref: Any, responses: list[list[Any]]) -> Any:
    if not (
        isinstance(ref, dict)
        and isinstance(ref.get("resultOf"), str)
        and isinstance(ref.get("name"), str)
        and isinstance(ref.get("path"), str)
    ):
        raise MethodError(
            "invalidResultReference", "a ResultReference needs resultOf, name and path strings"
        )
    response = next((r for r in responses if r[2] == ref["resultOf"]), None)
    if response is None:
        raise MethodError("invalidResultReference", f"no response for call {ref['resultOf']!r}")
    if response[0] != ref["name"]:
        raise MethodError(
            "invalidResultReference",
            f"call {ref['resultOf']!r} answered {response[0]!r}, not {ref['name']!r}",
        )
    path = ref["path"]
    if path and not path.startswith("/"):
        raise MethodError("invalidResultReference", f"path {path!r} must start with /")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]
    try:
        return evaluate_pointer(response[1], tokens)
    except LookupError:
        raise MethodError("invalidResultReference", f"path {path!r} does not resolve") from None


def evaluate_pointer(value: Any, tokens: list[str]) -> Any:
    """RFC 6901 evaluation plus `*`, which maps over an array and flattens (§3.7)."""
    if not tokens:
        return value
    token, rest = tokens[0], tokens[1:]
    if isinstance(value, list):
        if token == "*":
            out: list[Any] = []
            for item in value:
                result = evaluate_pointer(item, rest)
                if isinstance(result, list):
                    out.extend(result)
                else:
                    out.append(result)
            return out
        if ARRAY_INDEX.fullmatch(token):
            return evaluate_pointer(value[int(token)], rest)
        raise LookupError(token)
    if isinstance(value, dict):
        return evaluate_pointer(value[token], rest)
    raise LookupError(token)
