"""The EventSource endpoint (RFC 8620 §7.3): StateChange events, pings, closeafter."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import orjson

from ..protocol.errors import RequestError
from ..protocol.values import b64url, b64url_decode
from .bus import Bus, States

DECIMAL = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() takes "²"
MIN_PING = 1  # seconds; the RFC lets a server clamp ping to a minimum of at most 30


def parse_params(params: Any) -> tuple[set[str] | None, bool, int]:
    types = params.get("types", "*")
    wanted = None if types == "*" else {t for t in types.split(",") if t}
    closeafter = params.get("closeafter", "no")
    ping = params.get("ping", "0")
    if closeafter not in ("state", "no") or not DECIMAL.fullmatch(ping):
        raise RequestError(
            "about:blank", 400, "closeafter must be state or no; ping a number of seconds"
        )
    interval = int(ping)
    return wanted, closeafter == "state", max(interval, MIN_PING) if interval else 0


Known = dict[str, dict[str, str]]  # accountId → type → the state the client was told


def event_id(known: Known) -> bytes:
    """The states a client has been told, as the event's id: sent back as Last-Event-ID by a
    reconnecting EventSource, it says what the client missed (no state kept on the server)."""
    return b64url(orjson.dumps(known)).encode()


def parse_event_id(value: str | None) -> Known:
    """What a Last-Event-ID says the client was told; nothing for anything malformed."""
    if not value or len(value) > 65536:
        return {}
    try:
        known = orjson.loads(b64url_decode(value))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    if not isinstance(known, dict) or not all(
        isinstance(types, dict) and all(isinstance(s, str) for s in types.values())
        for types in known.values()
    ):
        return {}
    return known


def to_tell(changes: Known, wanted: set[str] | None, known: Known) -> Known:
    """The changes of the types the client wants, recorded in what it has been told."""
    if wanted is not None:
        changes = {a: {t: s for t, s in types.items() if t in wanted}
                   for a, types in changes.items()}  # fmt: skip
    changes = {a: types for a, types in changes.items() if types}
    for account_id, types in changes.items():
        known.setdefault(account_id, {}).update(types)
    return changes


def state_event(changes: Known, wanted: set[str] | None, known: Known) -> bytes | None:
    """A StateChange event of the changes the client is interested in (with an id telling
    all it has been told, `known`, updated here), or None."""
    changes = to_tell(changes, wanted, known)
    if not changes:
        return None
    body = orjson.dumps({"@type": "StateChange", "changed": changes})
    return b"event: state\nid: " + event_id(known) + b"\ndata: " + body + b"\n\n"


def current(states: States, wanted: set[str] | None) -> Known:
    return {a: {t: str(s) for t, s in types.items() if wanted is None or t in wanted}
            for a, types in states.items()}  # fmt: skip


def missed(known: Known, now: Known) -> Known:
    """The states that moved since the client was told `known` (RFC 8620 §7.3: a client
    reconnecting with Last-Event-ID learns at once what changed while it was away)."""
    out: Known = {}
    for account_id, types in now.items():
        told = known.get(account_id, {})
        moved = {t: s for t, s in types.items() if told.get(t) != s}
        if moved:
            out[account_id] = moved
    return out


async def stream(
    bus: Bus,
    account_ids: list[str],
    load_states: Callable[[list[str]], States],
    wanted: set[str] | None,
    close_after: bool,
    ping: int,
    still_valid: Callable[[], bool] = lambda: True,
    check_every: float = 10,
    last_event_id: str | None = None,
) -> AsyncIterator[bytes]:
    """The events for the user's accounts, until the client leaves (or the first state event
    with closeafter=state), or until its credential is no longer valid (revoked, password
    changed, account removed), which `still_valid` is asked every `check_every` seconds.
    Reconnecting with the Last-Event-ID of the last event it had, a client is first told
    what moved since."""
    loop = asyncio.get_running_loop()
    queue = bus.subscribe(account_ids)
    try:
        # Subscribed first, then primed: a change committed in between is still announced.
        states = await anyio.to_thread.run_sync(load_states, account_ids)
        bus.prime(states)
        now = current(states, wanted)
        # Every event's id tells every state the client knows (all of them, from now on).
        told = {a: t for a, t in parse_event_id(last_event_id).items() if a in account_ids}
        known = now if last_event_id is None else told
        yield b": jmapd event source\n\n"
        catch_up = state_event(missed(known, now), wanted, known) if known is not now else None
        if catch_up is not None:
            yield catch_up
            if close_after:
                return
        # A ping is due `ping` seconds after the last event sent, not the last change seen.
        due = loop.time() + ping
        check = loop.time() + check_every
        while True:
            try:
                wake = min(due, check) if ping else check
                changes = await asyncio.wait_for(queue.get(), max(wake - loop.time(), 0))
            except TimeoutError:
                if loop.time() >= check:
                    if not await anyio.to_thread.run_sync(still_valid):
                        return
                    check = loop.time() + check_every
                if ping and loop.time() >= due:
                    yield b"event: ping\ndata: " + orjson.dumps({"interval": ping}) + b"\n\n"
                    due = loop.time() + ping
                continue
            event = state_event(changes, wanted, known)
            if event is not None:
                yield event
                if close_after:
                    return
                due = loop.time() + ping
    finally:
        bus.unsubscribe(queue)
