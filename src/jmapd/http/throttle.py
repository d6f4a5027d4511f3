"""Failed logins, counted per client address and per username, in bounded memory.

After `free` failures within `window` seconds, each further attempt is refused until a
back-off that doubles with every failure (from one second up to `longest`) has passed.
Failures older than the window are forgotten. What is counted is bounded: past `capacity`
keys the oldest are dropped, so made-up names cannot fill the memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int
    last: float


class FailureCounter:
    def __init__(self, free: int, window: float, longest: float, capacity: int = 100_000):
        self.free = free
        self.window = window
        self.longest = longest
        self.capacity = capacity
        self._seen: OrderedDict[str, _Failures] = OrderedDict()

    def _current(self, key: str, now: float) -> _Failures | None:
        found = self._seen.get(key)
        if found is not None and now - found.last > self.window:
            del self._seen[key]
            return None
        return found

    def wait(self, key: str, now: float | None = None) -> float:
        """Seconds before the key may try again (0: now)."""
        now = time.monotonic() if now is None else now
        found = self._current(key, now)
        if found is None or found.count < self.free:
            return 0.0
        back_off = min(2.0 ** (found.count - self.free), self.longest)
        return max(0.0, found.last + back_off - now)

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        found = self._current(key, now)
        if found is None:
            self._seen[key] = _Failures(1, now)
        else:
            found.count += 1
            found.last = now
            self._seen.move_to_end(key)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._seen.pop(key, None)
