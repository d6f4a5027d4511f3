"""Changes committed by one worker process reach the others sharing its data directory at
once, without polling: each worker listens on a Unix datagram socket of its own (in Linux's
abstract namespace, named after the data directory and its pid) and leaves a marker file
named after its pid in DATA/.push/; after a commit a worker sends the changed states to every
other worker there. A worker that is gone is forgotten at the first send that finds it gone.

Push is a hint: a datagram lost (a receiver's queue full) costs latency only, since the bus
also reads the states now and then (push/bus.py poll), and clients resynchronise with
/changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import orjson

from .bus import States

log = logging.getLogger("jmapd.push")
MAX_DATAGRAM = 60_000


class LocalFanout:
    def __init__(self, data_dir: Path, deliver: Callable[[States], None]) -> None:
        self.directory = data_dir / ".push"
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self._prefix = (
            "jmapd-push-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
        )
        self.pid = os.getpid()
        self.deliver = deliver
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self._address(self.pid))
        self.sock.setblocking(False)
        (self.directory / str(self.pid)).touch()

    def _address(self, pid: int) -> str:
        return f"\0{self._prefix}-{pid}"  # abstract: gone with the process, no file

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            try:
                self.deliver(orjson.loads(data))
            except Exception:
                log.exception("a state change from another worker was not delivered")

    def send(self, changed: States) -> None:
        """Tell every other worker of the data directory (call after the commit)."""
        data = orjson.dumps(changed)
        if len(data) > MAX_DATAGRAM:
            return  # the others catch up by reading the states
        for marker in self.directory.iterdir():
            if not marker.name.isascii() or not marker.name.isdecimal():
                continue
            pid = int(marker.name)
            if pid == self.pid:
                continue
            try:
                self.sock.sendto(data, self._address(pid))
            except (ConnectionRefusedError, FileNotFoundError):
                marker.unlink(missing_ok=True)  # that worker is gone
            except BlockingIOError:
                pass  # its queue is full: it catches up by reading the states
            except OSError:  # so does it here; said, as this was not foreseen
                log.exception("telling worker %d of a change failed", pid)

    def close(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is not None:
            with contextlib.suppress(Exception):
                loop.remove_reader(self.sock.fileno())
        self.sock.close()
        (self.directory / str(self.pid)).unlink(missing_ok=True)
