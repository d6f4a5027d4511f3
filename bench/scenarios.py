"""The performance scenarios of the performance issue, by name, at concurrency 1 and 8, on 1
and 2 workers, on both backends, at 10,000 and 100,000 messages, with the RSS of each worker.
One command makes the table of docs/performance.md:

    .venv/bin/python -m bench.scenarios --messages 10000 100000 --workers 1 2 \\
        --backend sqlite,postgresql --data /var/tmp/jmapd-bench-search --json FILE

- list: Email/query of the Inbox, newest 50, and Email/get of them (by result reference) with
  the properties of a message list;
- list-collapsed: the same with collapseThreads;
- search: Email/query text (a word in 1% of the messages), newest 50;
- read-50: Email/get of 50 ids with the default properties and fetchTextBodyValues (the
  bodies of a reading pane);
- set-seen: Email/set of one Email's $seen, set and cleared in turn, each connection on
  Emails of its own;
- changes: Email/changes since a state 100 single-message keyword changes ago.

The accounts are filled once through the real ingest path (bench/fill.py, the corpus of
bench/corpus.py) and kept under --data for later runs (bench/search.py fills the same).
Each measurement: bench/loadgen.py, closed loop, one keep-alive connection per client,
--duration seconds after 1 s of warm-up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench.corpus import MARKER
from bench.fill import USING, database_flags, headers, jmapd_env
from bench.loadgen import run
from bench.machine import cpu_model
from bench.search import (
    call,
    filled_store,
    inbox_of,
    rss,
    size_mb,
)
from bench.server import JmapdServer

LIST_PROPERTIES = ["threadId", "mailboxIds", "keywords", "size", "receivedAt", "from",
                   "subject", "preview", "hasAttachment"]  # fmt: skip
SCENARIOS = ("list", "list-collapsed", "search", "read-50", "set-seen", "changes")
NEWEST = [{"property": "receivedAt", "isAscending": False}]


def body(calls: list[list[Any]]) -> bytes:
    return orjson.dumps({"using": USING, "methodCalls": calls})


def first(api_url: str, calls: list[list[Any]]) -> dict[str, Any]:
    found, error, _ = call(api_url, body(calls))
    if found is None:
        raise RuntimeError(error)
    return found


def requests(api_url: str, account: str, inbox: str, clients: int) -> dict[str, list[list[bytes]]]:
    """Each scenario's request bodies: one cycle per client."""
    query = {"accountId": account, "filter": {"inMailbox": inbox}, "sort": NEWEST, "limit": 50}
    listing = [
        ["Email/query", query, "q"],
        ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query",
                                                       "path": "/ids"},
                       "properties": LIST_PROPERTIES}, "g"],
    ]  # fmt: skip
    collapsed = [[listing[0][0], {**query, "collapseThreads": True}, "q"], listing[1]]
    search = {"accountId": account, "filter": {"text": MARKER}, "sort": NEWEST, "limit": 50}
    everything = first(api_url, [["Email/query", {**query, "limit": 2000}, "q"]])["ids"]
    middle = everything[len(everything) // 2 - 25 : len(everything) // 2 + 25]
    read = {"accountId": account, "ids": middle, "fetchTextBodyValues": True}
    toggles = []
    for client in range(clients):
        own = everything[100 + client * 20 : 120 + client * 20]
        toggles.append([
            body([["Email/set", {"accountId": account, "update": {
                email: {"keywords/$seen": value}}}, "s"]])
            for email in own for value in (True, None)
        ])  # fmt: skip
    since = first(api_url, [["Email/get", {"accountId": account, "ids": []}, "g"]])["state"]
    for i in range(100):
        email = everything[400 + i % 50]
        first(api_url, [["Email/set", {"accountId": account, "update": {
            email: {"keywords/$flagged": True if i < 50 else None}}}, "s"]])  # fmt: skip
    changes = {"accountId": account, "sinceState": since}
    return {
        "list": [[body(listing)]],
        "list-collapsed": [[body(collapsed)]],
        "search": [[body([["Email/query", search, "q"]])]],
        "read-50": [[body([["Email/get", read, "g"]])]],
        "set-seen": toggles,
        "changes": [[body([["Email/changes", changes, "c"]])]],
    }


def drive(api_url: str, cycles: list[list[bytes]], clients: int, duration: float) -> dict[str, Any]:
    result = uvloop.run(run(api_url, body=cycles[0][0], cycles=cycles, headers=headers(),
                            concurrency=clients, duration=duration, timeout=60))  # fmt: skip
    row: dict[str, Any] = {"rps": round(result.rps, 1), "p50": round(result.p50_ms, 2),
                           "p99": round(result.p99_ms, 2)}  # fmt: skip
    if result.errors:
        row["error"] = f"{result.errors} errors, e.g. {result.error_samples[:1]}"
    return row


def one_setup(backend: str, n: int, workers: int, args: argparse.Namespace,
              tmp: Path) -> dict[str, Any]:  # fmt: skip
    print(f"\n{backend}, N = {n}, {workers} worker(s):", flush=True)
    with filled_store(backend, n, args, tmp) as (data, database, fill_server, _, fill_record):
        fill_server.stop()  # the runs have a server of their own, with its workers
        env = jmapd_env() | {"JMAPD_WORKERS": str(workers)}
        server = JmapdServer(database_flags(data, database), env)
        out: dict[str, Any] = {"backend": backend, "messages": n, "workers": workers,
                               "fill": fill_record, "data_mb": round(size_mb(data), 1)}  # fmt: skip
        try:
            server.wait_ready()
            api_url = server.url + "/jmap/api"
            first(api_url, [["Core/echo", {}, "e"]])  # the credential, verified and cached
            account = httpx_account(server.url)
            inbox, _ = inbox_of(api_url, account)
            bodies = requests(api_url, account, inbox, max(args.concurrency))
            out["rows"] = []
            for name in args.scenarios:
                for clients in args.concurrency:
                    row = {"scenario": name, "c": clients}
                    row |= drive(api_url, bodies[name], clients, args.duration)
                    out["rows"].append(row)
                    print(f"  {name} c={clients}: {row}", flush=True)
            out["rss_mb"] = rss(server)
        except BaseException:
            print(f"  the server's last output:\n{server.output()}", flush=True)
            raise
        finally:
            server.stop()
    return out


def httpx_account(url: str) -> str:
    import httpx

    session = httpx.get(url + "/jmap/session", headers=headers(), timeout=60).json()
    return str(session["primaryAccounts"]["urn:ietf:params:jmap:mail"])


def table(setups: list[dict[str, Any]]) -> str:
    lines = ["| scenario | backend | N | workers | c | req/s | p50 ms | p99 ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for setup in setups:
        for row in setup["rows"]:
            lines.append(
                f"| {row['scenario']} | {setup['backend']} | {setup['messages']:,} | "
                f"{setup['workers']} | {row['c']} | {row['rps']:.0f} | {row['p50']:.2f} | "
                f"{row['p99']:.2f} |" + (f" {row['error']}" if row.get("error") else "")
            )
    lines += [
        "",
        "| backend | N | workers | data MB | RSS MB per process |",
        "|---|---:|---:|---:|---|",
    ]
    for setup in setups:
        per = ", ".join(f"{mb:.0f}" for mb in setup["rss_mb"]["per_process"].values())
        lines.append(f"| {setup['backend']} | {setup['messages']:,} | {setup['workers']} | "
                     f"{setup['data_mb']:.0f} | {per} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[10_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--json")
    args = parser.parse_args()
    setups = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend.split(","):
            for n in args.messages:
                for workers in args.workers:
                    setups.append(one_setup(backend, n, workers, args, Path(tmp)))
    print(f"\nMachine: {cpu_model()}\n")
    print(table(setups))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_model(), "setups": setups}, indent=1))


if __name__ == "__main__":
    main()
