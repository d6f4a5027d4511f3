"""The in-process state-change bus: committed `{accountId: {TypeName: state}}` changes fan out
to every subscriber of those accounts. Push is a hint; state strings stay the truth."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

Changes = dict[str, dict[str, str]]


class Bus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Changes]]] = defaultdict(set)

    def subscribe(self, account_ids: Iterable[str]) -> asyncio.Queue[Changes]:
        queue: asyncio.Queue[Changes] = asyncio.Queue(maxsize=1000)
        for account_id in account_ids:
            self._subscribers[account_id].add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Changes]) -> None:
        for account_id, queues in list(self._subscribers.items()):
            queues.discard(queue)
            if not queues:
                del self._subscribers[account_id]

    def publish(self, changed: dict[str, dict[str, int]]) -> None:
        """Called on the event loop after a transaction committed."""
        for account_id, types in changed.items():
            message = {account_id: {t: str(s) for t, s in types.items()}}
            for queue in self._subscribers.get(account_id, ()):
                if not queue.full():
                    queue.put_nowait(message)
