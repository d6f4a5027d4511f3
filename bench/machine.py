"""What the benchmarks share about the machine: a free port, the CPU model, and CPU accounting
from /proc (to report CPU per request and to reject runs other processes disturbed)."""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime+stime (all threads) of each of the given processes, in seconds."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings; a process new in `after` started in between."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def busy_seconds() -> float:
    """Busy CPU time of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    guest = sum(v[8:10]) if len(v) > 9 else 0
    return (sum(v) - idle - guest) / _CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


@contextlib.contextmanager
def scratch_database(backend: str, server: str, prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database on `server` (its URL), dropped afterwards; "" for SQLite."""
    if backend != "postgresql":
        yield ""
        return
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
