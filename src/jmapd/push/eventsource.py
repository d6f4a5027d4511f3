"""The EventSource endpoint (RFC 8620 §7.3): StateChange events, pings, closeafter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..protocol.errors import RequestError
from .bus import Bus

MIN_PING = 5


def parse_params(params: Any) -> tuple[set[str] | None, bool, int]:
    types = params.get("types", "*")
    wanted = None if types == "*" else {t for t in types.split(",") if t}
    closeafter = params.get("closeafter", "no")
    ping = params.get("ping", "0")
    if closeafter not in ("state", "no") or not ping.isdigit():
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
    bus: Bus, account_ids: list[str], wanted: set[str] | None, close_after: bool, ping: int
) -> AsyncIterator[bytes]:
    queue = bus.subscribe(account_ids)
    try:
        yield b": jmapd event source\n\n"
        while True:
            try:
                changes = await asyncio.wait_for(queue.get(), ping or None)
            except TimeoutError:
                yield b"event: ping\ndata: " + orjson.dumps({"interval": ping}) + b"\n\n"
                continue
            event = state_event(changes, wanted)
            if event is not None:
                yield event
                if close_after:
                    return
    finally:
        bus.unsubscribe(queue)
