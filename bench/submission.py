"""Sending (issue 12): `--submissions` drafts sent with EmailSubmission, ten to a request from
`--clients` clients at once, through the outbound queue to a smarthost in this process.
Reports submissions per second end to end (from the first EmailSubmission/set to the last
message at the smarthost) and the p50/p99 of the time from a submission's response to its
arrival there.

    .venv/bin/python -m bench.submission [--submissions 1000] [--clients 4] [--workers 1 2]
        [--backend sqlite|postgresql] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

import httpx

from bench.fill import jmapd_env
from bench.machine import cpu_model
from bench.mail_crash import Smarthost, post, submit_calls
from bench.server import JmapdServer, one_account, server_arguments

USER, PASSWORD = "sender@localhost", "sender-password"


def run(submissions: int, clients: int, workers: int, backend: str,
        pg_server: str) -> dict[str, Any]:  # fmt: skip
    smarthost = Smarthost()
    with one_account(backend, pg_server, "jmapd_bench_submission", USER, PASSWORD) as (
        data,
        database,
    ):
        args = ["--data", str(data), "--smarthost", f"127.0.0.1:{smarthost.controller.port}"]
        args += ["--database", database] if database else []
        server = JmapdServer(args, jmapd_env() | {"JMAPD_WORKERS": str(workers)})
        try:
            server.wait_ready()
            return _measure(server.url, submissions, clients, smarthost) | {
                "backend": backend, "workers": workers, "clients": clients}  # fmt: skip
        finally:
            server.stop()
            smarthost.controller.stop()


def _measure(url: str, submissions: int, clients: int, smarthost: Smarthost) -> dict[str, Any]:
    batches = iter(range(0, submissions, 10))
    answered: dict[str, float] = {}
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(auth=(USER, PASSWORD), timeout=60) as http:
            session = http.get(url + "/jmap/session").json()
            account = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
            calls = [["Identity/get", {"accountId": account}, "i"],
                     ["Mailbox/get", {"accountId": account}, "m"]]  # fmt: skip
            identities, boxes = (r[1]["list"] for r in post(http, url, calls))
            drafts = next(b["id"] for b in boxes if b["role"] == "drafts")
            while True:
                with lock:
                    start = next(batches, None)
                if start is None:
                    return
                batch = [f"bench-{n}@submission.example"
                         for n in range(start, min(start + 10, submissions))]  # fmt: skip
                calls = submit_calls(account, identities[0]["id"], drafts, batch, USER)
                made = post(http, url, calls)[1][1].get("created") or {}
                if len(made) != len(batch):
                    raise RuntimeError(f"submissions refused: {post(http, url, calls)[1]}")
                now = time.perf_counter()
                with lock:
                    answered.update(dict.fromkeys(batch, now))

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 300
    while len(smarthost.count("bench-")) < submissions and time.monotonic() < deadline:
        time.sleep(0.01)
    arrived = {m: t for m, t in smarthost.arrived.items() if m.startswith("bench-")}
    waits = sorted(arrived[m] - answered[m] for m in arrived)
    return {
        "submissions": submissions,
        "arrived": len(arrived),
        "twice": sum(1 for c in smarthost.count("bench-").values() if c > 1),
        "submissions/s": round(len(arrived) / (max(arrived.values()) - began), 1),
        "at smarthost after response p50 ms": round(statistics.median(waits) * 1000, 1),
        "at smarthost after response p99 ms": round(waits[int(len(waits) * 0.99) - 1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    server_arguments(parser)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}")
    results = []
    for workers in args.workers:
        result = run(args.submissions, args.clients, workers, args.backend, args.server)
        print(result, flush=True)
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
