"""The EventSource endpoint (RFC 8620 §7.3): StateChange events, pings, closeafter."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import orjson

from ..protocol.errors import RequestError
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


def state_event(changes: dict[str, dict[str, str]], wanted: set[str] | None) -> bytes | None:
    if wanted is not None:
        changes = {
            a: {t: s for t, s in types.items() if t in wanted} for a, types in changes.items()
        }
        changes = {a: types for a, types in changes.items() if types}
    if not changes:
        return None
    body = orjson.dumps({"@type": "StateChange", "changed": changes})
    return b"event: state\ndata: " + body + b"\n\n"


async def stream(
    bus: Bus,
    account_ids: list[str],
    load_states: Callable[[list[str]], States],
    wanted: set[str] | None,
    close_after: bool,
    ping: int,
    still_valid: Callable[[], bool] = lambda: True,
    check_every: float = 10,
) -> AsyncIterator[bytes]:
    """The events for the user's accounts, until the client leaves (or the first state event
    with closeafter=state), or until its credential is no longer valid (revoked, password
    changed, account removed), which `still_valid` is asked every `check_every` seconds."""
    loop = asyncio.get_running_loop()
    queue = bus.subscribe(account_ids)
    try:
        # Subscribed first, then primed: a change committed in between is still announced.
        bus.prime(await anyio.to_thread.run_sync(load_states, account_ids))
        yield b": jmapd event source\n\n"
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
            event = state_event(changes, wanted)
            if event is not None:
                yield event
                if close_after:
                    return
                due = loop.time() + ping
    finally:
        bus.unsubscribe(queue)
