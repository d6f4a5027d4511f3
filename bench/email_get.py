"""Email/get and Thread/get on a large account (issue: large-account benchmark).

1. Makes one account with the CLI in a temporary data directory (SQLite) and starts
   `jmapd serve` (granian, 1 worker) with maxSizeRequest 100 MB and maxConcurrentRequests 1000.
2. Fills the account's Inbox with N messages from bench/corpus.py through the real ingest
   path (bench/fill.py): each message is uploaded to the session's uploadUrl (4 uploads in
   flight, the default maxConcurrentUpload), then one Email/import per batch of 200 with the
   message's Date as receivedAt, $seen on 80% and $flagged on 3%. Prints progress and the
   import rate (message generation and uploads included; generating the next batch in a
   client thread meanwhile was slower in one try, probably the GIL delaying the uploads).
3. Measures with bench/loadgen.py (closed loop, keep-alive, duration 5 s after 1 s warm-up) at
   concurrency 1 and 16: Email/get of 50 ids from the middle of the mailbox (import order is
   Date order) with the properties of a message list, and Thread/get of their threads.
   Also prints the resident memory of the server's processes after the fill, and the latency
   of single Mailbox/get and Email/query requests (they read every Email of the account).

    .venv/bin/python -m bench.email_get [--messages 10000] [--duration 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

from bench.fill import add_account, fill, headers, jmapd_env, request
from bench.loadgen import run
from bench.machine import cpu_model
from bench.server import JmapdServer

LIST_PROPERTIES = [
    "threadId", "mailboxIds", "keywords", "size", "receivedAt", "from", "subject", "preview",
    "hasAttachment",
]  # fmt: skip


def measure(url: str, body: bytes, concurrency: int, duration: float) -> dict[str, Any]:
    result = uvloop.run(
        run(url, body=body, headers=headers(), concurrency=concurrency, duration=duration)
    )
    assert result.errors == 0, result.error_samples
    return {"c": concurrency, "rps": result.rps, "p50": result.p50_ms, "p99": result.p99_ms}


def one_shot(api_url: str, account_id: str) -> dict[str, float]:
    """Latency (ms, best of 3) of requests that still read every Email of the account:
    Mailbox/get (counts) and Email/query of the Inbox's 50 newest (not in the loadgen table)."""
    boxes = httpx.post(
        api_url,
        content=request([["Mailbox/get", {"accountId": account_id}]]),
        headers=headers(),
        timeout=300,
    ).json()["methodResponses"][0][1]["list"]
    inbox = next(m["id"] for m in boxes if m["role"] == "inbox")
    bodies = {
        "Mailbox/get": request([["Mailbox/get", {"accountId": account_id}]]),
        "Email/query inbox 50 newest": request(
            [
                [
                    "Email/query",
                    {
                        "accountId": account_id,
                        "filter": {"inMailbox": inbox},
                        "sort": [{"property": "receivedAt", "isAscending": False}],
                        "limit": 50,
                    },
                ]
            ]
        ),
    }
    out = {}
    for name, body in bodies.items():
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            r = httpx.post(api_url, content=body, headers=headers(), timeout=300)
            best = min(best, time.perf_counter() - t)
            assert r.json()["methodResponses"][0][0] != "error", r.text[:1000]
        out[name] = round(best * 1000, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    # A SIGTERM stops the server and removes the data directory too (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out: dict[str, Any] = {
        "messages": args.messages,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}",
    }
    with tempfile.TemporaryDirectory(prefix="jmapd-email-get-") as tmp:
        data = Path(tmp)
        add_account(data)
        server = JmapdServer(["--data", str(data)], jmapd_env())
        try:
            server.wait_ready()
            print(f"filling {args.messages} messages ...", flush=True)
            account_id, ids, took, size = asyncio.run(fill(server, args.messages, args.seed))
            out["fill_seconds"] = took
            out["import_rate"] = args.messages / took
            out["corpus_mb"] = size / 1e6
            print(f"filled in {took:.0f}s: {args.messages / took:.0f} msg/s, {size / 1e6:.0f} MB")
            rss = server.rss_mb()
            out["rss_mb"] = rss
            print(f"server RSS after fill (MB, per process): {rss}")
            out["data_mb"] = sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 1e6
            middle = len(ids) // 2 - 25
            chosen = ids[middle : middle + 50]
            api_url = server.url + "/jmap/api"
            get_body = request(
                [["Email/get", {"accountId": account_id, "ids": chosen,
                                "properties": LIST_PROPERTIES}]]
            )  # fmt: skip
            answer = httpx.post(api_url, content=get_body, headers=headers(), timeout=60)
            listed = answer.json()["methodResponses"][0][1]["list"]
            assert len(listed) == 50, answer.text[:2000]
            threads = list(dict.fromkeys(e["threadId"] for e in listed))
            out["threads"] = len(threads)
            thread_body = request([["Thread/get", {"accountId": account_id, "ids": threads}]])
            answer = httpx.post(api_url, content=thread_body, headers=headers(), timeout=60)
            thread_list = answer.json()["methodResponses"][0][1]["list"]
            assert len(thread_list) == len(threads), answer.text[:2000]
            out["thread_sizes"] = sorted(len(t["emailIds"]) for t in thread_list)
            out["one_shot_ms"] = one_shot(api_url, account_id)
            print(f"single requests (ms): {out['one_shot_ms']}", flush=True)
            rows = []
            for name, body in (
                ("Email/get 50", get_body),
                (f"Thread/get {len(threads)}", thread_body),
            ):
                for concurrency in (1, 16):
                    row = measure(api_url, body, concurrency, args.duration)
                    rows.append({"name": name, **row})
                    print(
                        f"  {name} c={concurrency}: {row['rps']:.0f} req/s, "
                        f"p50 {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms",
                        flush=True,
                    )
            out["rows"] = rows
            out["rss_mb_after"] = server.rss_mb()
        finally:
            server.stop()
    print(f"\nmachine: {out['machine']}; {out['date']}; N = {args.messages}")
    print(
        f"fill: {out['fill_seconds']:.0f}s, {out['import_rate']:.0f} msg/s, "
        f"corpus {out['corpus_mb']:.0f} MB, data dir {out['data_mb']:.0f} MB"
    )
    print(f"RSS after fill {out['rss_mb']}, after the runs {out['rss_mb_after']}")
    print("| request | concurrency | req/s | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- |")
    for row in out["rows"]:
        print(
            f"| {row['name']} | {row['c']} | {row['rps']:.0f} "
            f"| {row['p50']:.2f} | {row['p99']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
