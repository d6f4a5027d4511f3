"""A `jmapd serve` process for benchmarks, in a session of its own (granian's workers are in it
too), so that it can be measured and stopped as a whole."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.machine import free_port, scratch_database


class JmapdServer:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        """Start `jmapd serve` with `args` (e.g. --data, --database) on a free port."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        listen = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jmapd.cli", "serve", "--listen", listen, *args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        if self.log.closed:  # stopped: what it said is gone
            return "(stopped)"
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jmapd exited:\n{self.output()}")
            try:
                if httpx.get(self.url + "/.well-known/jmap").status_code == 307:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"jmapd did not start in {timeout}s:\n{self.output()}")

    def _ps(self, fields: str) -> list[list[str]]:
        out = subprocess.run(
            ["ps", "-o", fields, "--sid", str(self.process.pid)], capture_output=True, text=True
        )
        return [line.split() for line in out.stdout.splitlines()]

    def pids(self) -> list[int]:
        return [int(row[0]) for row in self._ps("pid=")]

    def rss_mb(self) -> dict[int, float]:
        """Resident memory (MB) of each process of the server's session."""
        return {int(pid): int(rss) / 1024 for pid, rss in self._ps("pid=,rss=")}

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        # Whatever is left of the session we started (its id is our child's pid).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.log.close()


@contextlib.contextmanager
def one_account(backend: str, pg_server: str, prefix: str, user: str,
                password: str) -> Iterator[tuple[Path, str]]:  # fmt: skip
    """A fresh data directory (and on PostgreSQL a scratch database, dropped afterwards) with
    one account: (data directory, database URL or "")."""
    from bench.crash import cli

    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database(backend, pg_server, prefix) as database,
    ):
        data = Path(tmp) / "data"
        made = cli(data, database, "account", "add", user, "--password", password)
        if made.returncode != 0:
            raise RuntimeError(made.stderr)
        yield data, database


def server_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every server benchmark takes: --workers, --backend, --server, --json."""
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="PostgreSQL to make scratch databases on")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the results here too")
