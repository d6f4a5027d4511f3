"""A failed-login storm (issue 10): `--bad` logins with made-up credentials, `--concurrency`
at a time, from many client addresses (X-Forwarded-For from a trusted loopback proxy, so the
per-address throttle does not simply stop them), while one user whose credentials are
verified keeps making Mailbox/get requests. Reports the server's peak memory against before
the storm and the user's latency. Goal: memory flat; the user's p99 < 100 ms.

    .venv/bin/python -m bench.logins [--bad 500] [--concurrency 64] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.crash import cli
from bench.fill import jmapd_env
from bench.machine import cpu_model
from bench.server import JmapdServer

USER, PASSWORD = "storm@localhost", "storm-password"


def peak_rss_mb(server: JmapdServer) -> float:
    """The largest peak resident memory (VmHWM) among the server's processes, in MB."""
    peaks = []
    for pid in server.pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def storm(bad: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        cli(data, "", "account", "add", USER, "--password", PASSWORD)
        env = jmapd_env() | {"JMAPD_TRUSTED_PROXIES": "127.0.0.1"}
        server = JmapdServer(["--data", str(data)], env)
        try:
            server.wait_ready()
            return _measure(server, bad, concurrency)
        finally:
            server.stop()


def _measure(server: JmapdServer, bad: int, concurrency: int) -> dict[str, Any]:
    user = httpx.Client(base_url=server.url, auth=(USER, PASSWORD), timeout=60)
    account = user.get("/jmap/session").json()["primaryAccounts"]["urn:ietf:params:jmap:mail"]
    body = {"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
            "methodCalls": [["Mailbox/get", {"accountId": account, "ids": None}, "m"]]}  # fmt: skip
    for _ in range(20):
        user.post("/jmap/api", json=body)  # warm
    before = peak_rss_mb(server)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    done = threading.Event()

    def legit() -> None:
        while not done.is_set():
            started = time.perf_counter()
            assert user.post("/jmap/api", json=body).status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)

    def attack(i: int) -> None:
        name = base64.b64encode(f"nobody{i}@example.com:guess{i}".encode()).decode()
        headers = {
            "Authorization": f"Basic {name}",
            "X-Forwarded-For": f"10.{i // 250}.{i % 250}.1",
        }
        with httpx.Client(timeout=120) as http:
            status = http.get(server.url + "/jmap/session", headers=headers).status_code
        statuses[status] = statuses.get(status, 0) + 1

    watcher = threading.Thread(target=legit)
    started = time.monotonic()
    watcher.start()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(attack, range(bad)))
    done.set()
    watcher.join()
    user.close()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "bad logins": bad, "concurrency": concurrency, "answers": statuses,
        "storm seconds": round(time.monotonic() - started, 1),
        "peak RSS before MB": round(before, 1), "peak RSS after MB": round(peak_rss_mb(server), 1),
        "user requests": len(latencies),
        "user p50 ms": round(statistics.median(latencies) * 1000, 2),
        "user p99 ms": round(cuts[98] * 1000, 2),
        "cpu": cpu_model(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = storm(args.bad, args.concurrency)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
