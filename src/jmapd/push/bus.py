"""The state-change bus: committed `{accountId: {TypeName: state}}` changes fan out to every
subscriber of those accounts. Push is a hint; state strings stay the truth.

Changes made through this process are published at once. Changes made by other processes
(more workers, other nodes) are found by polling the store's type states while anyone listens.
The bus remembers the newest state it announced per account and type, so each change is
announced once whichever way it arrives.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

import anyio.to_thread

Changes = dict[str, dict[str, str]]
States = dict[str, dict[str, int]]
log = logging.getLogger("jmapd.push")


class Bus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Changes]]] = defaultdict(set)
        self._seen: dict[str, dict[str, int]] = {}
        self._everything: set[asyncio.Queue[Changes]] = set()  # every account's changes

    def subscribe(self, account_ids: Iterable[str]) -> asyncio.Queue[Changes]:
        queue: asyncio.Queue[Changes] = asyncio.Queue(maxsize=1000)
        for account_id in account_ids:
            self._subscribers[account_id].add(queue)
        return queue

    def subscribe_all(self) -> asyncio.Queue[Changes]:
        """Every change of every account (the Web Push dispatcher)."""
        queue: asyncio.Queue[Changes] = asyncio.Queue(maxsize=10_000)
        self._everything.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Changes]) -> None:
        self._everything.discard(queue)
        for account_id, queues in list(self._subscribers.items()):
            queues.discard(queue)
            if not queues:
                del self._subscribers[account_id]
                self._seen.pop(account_id, None)

    def watched(self) -> list[str]:
        return list(self._subscribers)

    def prime(self, states: States) -> None:
        """Remember the states subscribers already know, so only later changes are sent."""
        for account_id, types in states.items():
            seen = self._seen.setdefault(account_id, {})
            for type, state in types.items():
                seen[type] = max(seen.get(type, 0), state)

    def publish(self, changed: States) -> None:
        """Announce states newer than the last announced ones (call on the event loop)."""
        for account_id, types in changed.items():
            queues = self._subscribers.get(account_id, set()) | self._everything
            if not queues:
                continue
            seen = self._seen.setdefault(account_id, {})
            newer = {t: s for t, s in types.items() if s > seen.get(t, 0)}
            if not newer:
                continue
            seen.update(newer)
            message = {account_id: {t: str(s) for t, s in newer.items()}}
            for queue in queues:
                if not queue.full():
                    queue.put_nowait(message)


async def catch_up(bus: Bus, states: Callable[[list[str]], States]) -> None:
    """Publish whatever changed in the watched accounts that the bus has not announced (the
    store's states are the truth; the bus sends only what is newer)."""
    accounts = bus.watched()
    if not accounts:
        return
    try:
        bus.publish(await anyio.to_thread.run_sync(states, accounts))
    except Exception:
        log.exception("reading the states to catch up on changes failed")


async def poll(bus: Bus, states: Callable[[list[str]], States], every: float = 1.0) -> None:
    """Forever: while anyone listens, publish the changes other processes committed."""
    while True:
        await asyncio.sleep(every)
        await catch_up(bus, states)
