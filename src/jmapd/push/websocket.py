"""JMAP over WebSocket (RFC 8887): requests and responses, request-level errors, and push.

The connection is authenticated once, at the handshake, like any HTTP request (§4.1); the
credential is re-checked now and then, and a connection whose credential is no longer valid
is closed with 1008. Requests are answered as they finish, each with the id it came with
(§4.3.2), and count toward maxConcurrentRequests with the user's HTTP requests. Push is
enabled with WebSocketPushEnable (dataTypes, pushState) and disabled with
WebSocketPushDisable; each StateChange carries a pushState: every state the client has been
told, so a client reconnecting with it is told at once what it missed (§4.3.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..protocol.errors import RequestError
from ..protocol.registry import REGISTRY, Capability
from .bus import Bus, States
from .eventsource import Known, current, event_id, missed, parse_event_id, to_tell

log = logging.getLogger("jmapd.push")

WEBSOCKET = "urn:ietf:params:jmap:websocket"
PATH = "/jmap/ws/"
POLICY_VIOLATION, UNSUPPORTED_DATA = 1008, 1003

# §3: in the session only (the url made absolute by the session resource, http/session.py).
REGISTRY.capability(
    Capability(WEBSOCKET, lambda config: {"url": PATH, "supportsPush": True}, lambda a: None)
)


@dataclass
class Connection:
    """What the endpoint needs from the HTTP side, for one authenticated connection."""

    socket: WebSocket
    account_ids: list[str]
    answer: Callable[[bytes], Awaitable[dict[str, Any]]]  # a Request's body → its Response
    load_states: Callable[[list[str]], Awaitable[States]]
    still_valid: Callable[[], Awaitable[bool]]
    bus: Bus
    max_size: int
    check_every: float
    # Requests read and not yet answered: past this many the next message is not read, so
    # a client that never reads its answers holds no more than this many in memory.
    max_in_flight: int = 4
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    push: asyncio.Task[None] | None = None


def request_error(error: RequestError, request_id: Any) -> dict[str, Any]:
    out = {"@type": "RequestError", **error.problem()}
    if isinstance(request_id, str):
        out["requestId"] = request_id
    return out


async def serve(conn: Connection) -> None:
    """Read messages until the client leaves or its credential goes."""
    watcher = asyncio.create_task(_watch_credential(conn))
    in_flight = asyncio.Semaphore(conn.max_in_flight)
    try:
        while True:
            await in_flight.acquire()
            in_flight.release()
            message = await conn.socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is None:  # §4.3.1: binary frames are not JMAP
                await conn.socket.close(UNSUPPORTED_DATA)
                return
            await _dispatch(conn, message["text"], in_flight)
    except WebSocketDisconnect:
        return
    finally:
        watcher.cancel()
        for task in [*conn.tasks, *([conn.push] if conn.push else [])]:
            task.cancel()


# What sending to a client that is gone raises (starlette: a disconnect, or a send after the
# close; the server's transport: an OSError).
GONE = (WebSocketDisconnect, RuntimeError, OSError)


async def _send(conn: Connection, value: dict[str, Any]) -> None:
    with contextlib.suppress(*GONE):  # the client may be gone; its tasks end with it
        await conn.socket.send_text(orjson.dumps(value).decode())


async def _dispatch(conn: Connection, text: str, in_flight: asyncio.Semaphore) -> None:
    if len(text.encode()) > conn.max_size:
        error = RequestError("limit", 400, f"the message is larger than {conn.max_size} octets",
                             limit="maxSizeRequest")  # fmt: skip
        await _send(conn, request_error(error, None))
        return
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        await _send(conn, request_error(RequestError("notJSON", 400, f"not JSON: {e}"), None))
        return
    kind = data.get("@type") if isinstance(data, dict) else None
    if kind == "Request":
        await in_flight.acquire()
        task = asyncio.create_task(_request(conn, data))
        task.add_done_callback(lambda _: in_flight.release())
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)
    elif kind == "WebSocketPushEnable":
        await _enable_push(conn, data)
    elif kind == "WebSocketPushDisable":
        if conn.push is not None:
            conn.push.cancel()
            conn.push = None
    else:
        error = RequestError("notRequest", 400, "expected a Request, WebSocketPushEnable or "
                             "WebSocketPushDisable object")  # fmt: skip
        await _send(conn, request_error(error, data.get("id") if isinstance(data, dict) else None))


async def _request(conn: Connection, data: dict[str, Any]) -> None:
    """One Request (§4.3.2): `@type` and `id` are the WebSocket's, the rest is RFC 8620's."""
    request_id = data.get("id")
    body = {k: v for k, v in data.items() if k not in ("@type", "id")}
    try:
        response = await conn.answer(orjson.dumps(body))
    except RequestError as e:
        await _send(conn, request_error(e, request_id))
        return
    except Exception:
        log.exception("a WebSocket request failed")
        error = RequestError("serverFail", 500, "internal server error")
        await _send(conn, request_error(error, request_id))
        return
    out = {"@type": "Response", **response}
    if isinstance(request_id, str):
        out["requestId"] = request_id
    await _send(conn, out)


async def _enable_push(conn: Connection, data: dict[str, Any]) -> None:
    types, push_state = data.get("dataTypes"), data.get("pushState")
    if not (types is None or (isinstance(types, list) and all(isinstance(t, str) for t in types))
            ) or not (push_state is None or isinstance(push_state, str)):  # fmt: skip
        error = RequestError(
            "invalidArguments",
            400,
            "dataTypes must be null or a list of type names, pushState a String",
        )
        await _send(conn, request_error(error, None))
        return
    if conn.push is not None:
        conn.push.cancel()
    wanted = None if types is None else set(types)
    conn.push = asyncio.create_task(_push(conn, wanted, push_state))


async def _push(conn: Connection, wanted: set[str] | None, push_state: str | None) -> None:
    queue = conn.bus.subscribe(conn.account_ids)
    try:
        states = await conn.load_states(conn.account_ids)
        conn.bus.prime(states)
        now = current(states, wanted)
        told = {a: t for a, t in parse_event_id(push_state).items() if a in conn.account_ids}
        known: Known = now if push_state is None else told
        if known is not now:
            await _state_change(conn, missed(known, now), wanted, known)
        while True:
            await _state_change(conn, await queue.get(), wanted, known)
    finally:
        conn.bus.unsubscribe(queue)


async def _state_change(conn: Connection, changes: Known, wanted: set[str] | None,
                        known: Known) -> None:  # fmt: skip
    changes = to_tell(changes, wanted, known)
    if not changes:
        return
    await _send(conn, {"@type": "StateChange", "changed": changes,
                       "pushState": event_id(known).decode()})  # fmt: skip


async def _watch_credential(conn: Connection) -> None:
    while True:
        await asyncio.sleep(conn.check_every)
        if not await conn.still_valid():
            with contextlib.suppress(*GONE):
                await conn.socket.close(POLICY_VIOLATION)
            return
