"""Core/echo against a bare fixed-JSON endpoint on the same server (issue: core benchmark).

Starts jmapd (granian, one worker, SQLite in a temporary directory) with one extra route, then
measures requests/s, p50 and p99 at concurrency 1 and 32 for both, and prints the ratio.

    .venv/bin/python -m bench.echo [--duration 5] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench.loadgen import run
from bench.machine import cpu_model, free_port
from jmapd import config as configuration

ECHO = orjson.dumps(
    {
        "using": ["urn:ietf:params:jmap:core"],
        "methodCalls": [["Core/echo", {"hello": True}, "c1"]],
    }
)


def start(data: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    config = configuration.load(overrides={"data": str(data)}, environ={})
    env = dict(os.environ, JMAPD_RESOLVED_CONFIG=orjson.dumps(config.values).decode())
    command = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "bench.echo_app:app",
    ]
    process = subprocess.Popen(command, env=env, cwd=Path(__file__).parent.parent)
    for _ in range(300):
        try:
            with httpx.Client() as client:
                if client.post(f"http://127.0.0.1:{port}/bare").status_code == 200:
                    return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "jmapd.cli",
                "account",
                "add",
                "bench@localhost",
                "--password",
                "bench",
                "--data",
                str(data),
            ],
            check=True,
            capture_output=True,
        )
        port = free_port()
        server = start(data, port, args.workers)
        auth = "Basic " + base64.b64encode(b"bench@localhost:bench").decode()
        headers = {"Content-Type": "application/json", "Authorization": auth}
        rows = []
        try:
            for concurrency in (1, 32):
                for name, path in (("bare", "/bare"), ("Core/echo", "/jmap/api")):
                    result = asyncio.run(
                        run(
                            f"http://127.0.0.1:{port}{path}",
                            body=ECHO,
                            headers=headers,
                            concurrency=concurrency,
                            duration=args.duration,
                        )
                    )
                    assert result.errors == 0, result.error_samples
                    rows.append((name, concurrency, result.rps, result.p50_ms, result.p99_ms))
        finally:
            server.terminate()
            server.wait()
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"server: granian, {args.workers} worker(s); client on the same machine\n")
    print("| endpoint | concurrency | req/s | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, concurrency, rps, p50, p99 in rows:
        print(f"| {name} | {concurrency} | {rps:.0f} | {p50:.2f} | {p99:.2f} |")
    for concurrency in (1, 32):
        bare = next(r[2] for r in rows if r[0] == "bare" and r[1] == concurrency)
        echo = next(r[2] for r in rows if r[0] == "Core/echo" and r[1] == concurrency)
        print(f"\nCore/echo / bare at concurrency {concurrency}: {echo / bare:.2f}")


if __name__ == "__main__":
    main()
