"""Throughput of 1, 2 and 3 jmapd nodes on one PostgreSQL database (and 1 node on SQLite).

On a scratch PostgreSQL database (created here, dropped at the end, also on failure) and a
temporary data directory shared by the nodes (their blob directory):

1. creates the accounts with the CLI (`jmapd account add`), then for each configuration starts N
   `jmapd serve` nodes (granian, 1 worker each; the test type Note from
   tests/support/engine_types.py through JMAPD_EXTRA_MODULES; maxConcurrentRequests 1000) and
   creates one Note per account through the first node;
2. drives all nodes at once with bench/loadgen.py: 16 connections per node, each its own
   loadgen run() (loadgen sends one fixed body per run) for its own account, all runs started
   together with asyncio.gather. Connection i of node k uses account (16k + i) mod ACCOUNTS.

Two request bodies (each measured in turn on the same nodes):

- set+get: `Note/set` updating one tag patch ("tags/bench": true) of the account's note, then
  `Note/get` of it. With a fixed body only the first request changes the note: the engine does
  not write a record that an update leaves equal, so every later Note/set is a write
  transaction that locks the account row, reads the note and commits without a new modseq.
- toggle: `Note/set` "tags/bench": true, `Note/set` "tags/bench": null, then `Note/get`: every
  request makes two real writes (two modseqs, two record upserts, two NOTIFYs).

The script checks the answers (no method errors) and, from the type states before and after,
that set+get wrote nothing and that toggle wrote twice per request.

loadgen reports percentiles per run only, so p50 and p99 below are the request-weighted means
of the connections' own p50 and p99 (all connections run the same workload). The machine has 2
cores shared by the nodes, PostgreSQL and the load generator: more nodes on it measure
contention, not scaling.

    .venv/bin/python -m bench.nodes [--duration 6] [--warmup 2] [--accounts 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import uvloop

from bench.loadgen import Result, run
from bench.machine import busy_seconds, cpu_model, cpu_seconds, cpu_used
from bench.server import JmapdServer

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "tests" / "support"
USING = ["urn:ietf:params:jmap:core", "urn:jmapd:test"]
CONNECTIONS = 16  # per node
PY = sys.executable


# -- processes ---------------------------------------------------------------------------------


def jmapd_env() -> dict[str, str]:
    """Our environment without anyone's JMAPD_* settings, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JMAPD_")}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(SUPPORT), str(ROOT / "src"), os.environ.get("PYTHONPATH")])
    )
    env["JMAPD_EXTRA_MODULES"] = "engine_types"
    env["JMAPD_MAX_CONCURRENT_REQUESTS"] = "1000"
    return env


def database_flags(data: Path, database: str) -> list[str]:
    return ["--data", str(data)] + (["--database", database] if database else [])


def add_accounts(data: Path, database: str, names: list[str], password: str) -> list[str]:
    """`jmapd account add` for each name (the first alone: it creates the schema); their ids."""

    def start(name: str) -> subprocess.Popen[str]:
        command = [PY, "-m", "jmapd.cli", "account", "add", name, "--password", password]
        return subprocess.Popen(
            command + database_flags(data, database),
            env=jmapd_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def finish(process: subprocess.Popen[str]) -> str:
        out, _ = process.communicate(timeout=60)
        if process.returncode != 0:
            raise RuntimeError(f"jmapd account add failed: {out}")
        return out.split()[0]

    ids = [finish(start(names[0]))]
    for first in range(1, len(names), 4):
        batch = [start(name) for name in names[first : first + 4]]
        ids += [finish(p) for p in batch]
    return ids


def start_node(data: Path, database: str) -> JmapdServer:
    """One node: `jmapd serve` on the shared database."""
    return JmapdServer(database_flags(data, database), jmapd_env())


@contextlib.contextmanager
def nodes(count: int, data: Path, database: str) -> Iterator[list[JmapdServer]]:
    started: list[JmapdServer] = []
    try:
        for _ in range(count):
            started.append(start_node(data, database))
        for node in started:
            node.wait_ready()
        yield started
    finally:
        for node in started:
            node.stop()


# -- CPU accounting ----------------------------------------------------------------------------


def wait_quiet(max_other: float, max_wait: float) -> float:
    """Wait (at most max_wait s) until the machine is nearly idle; the last load seen."""
    deadline = time.monotonic() + max_wait
    while True:
        a, t = busy_seconds(), time.perf_counter()
        time.sleep(1.0)
        load = (busy_seconds() - a) / (time.perf_counter() - t)
        if load < max_other or time.monotonic() > deadline:
            return load


def backend_pids(admin_url: str, database: str) -> list[int]:
    if not database:
        return []
    name = database.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchall()
    return [r[0] for r in rows]


# -- JMAP --------------------------------------------------------------------------------------


@dataclass
class Account:
    id: str
    name: str
    password: str
    note: str = ""

    @property
    def headers(self) -> dict[str, str]:
        basic = base64.b64encode(f"{self.name}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}


def body(workload: str, account: Account) -> bytes:
    a, n = account.id, account.note
    calls: list[list[Any]] = [["Note/set", {"accountId": a, "update": {n: {"tags/bench": True}}}]]
    if workload == "toggle":
        calls.append(["Note/set", {"accountId": a, "update": {n: {"tags/bench": None}}}])
    calls.append(["Note/get", {"accountId": a, "ids": [n]}])
    return orjson.dumps(
        {"using": USING, "methodCalls": [[m, args, f"c{i}"] for i, (m, args) in enumerate(calls)]}
    )


def call(client: httpx.Client, url: str, account: Account, payload: bytes) -> list[Any]:
    response = client.post(url + "/jmap/api", content=payload, headers=account.headers)
    response.raise_for_status()
    answers = response.json()["methodResponses"]
    for name, args, _ in answers:
        if name == "error" or args.get("notUpdated") or args.get("notCreated"):
            raise RuntimeError(f"{account.name}: {answers}")
    return answers


def create_notes(url: str, accounts: list[Account]) -> None:
    with httpx.Client(timeout=30) as client:
        for account in accounts:
            payload = orjson.dumps(
                {
                    "using": USING,
                    "methodCalls": [
                        [
                            "Note/set",
                            {
                                "accountId": account.id,
                                "create": {"n": {"title": f"note of {account.name}"}},
                            },
                            "c0",
                        ]
                    ],
                }
            )
            account.note = call(client, url, account, payload)[0][1]["created"]["n"]["id"]


def states(url: str, accounts: list[Account]) -> dict[str, int]:
    out = {}
    with httpx.Client(timeout=30) as client:
        for account in accounts:
            payload = orjson.dumps(
                {
                    "using": USING,
                    "methodCalls": [["Note/get", {"accountId": account.id, "ids": []}, "c0"]],
                }
            )
            out[account.id] = int(call(client, url, account, payload)[0][1]["state"])
    return out


# -- the benchmark -----------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    nodes: int
    workload: str
    connections: int
    requests: int
    errors: int
    rps: float
    p50_ms: float  # request-weighted mean of the connections' p50
    p99_ms: float  # request-weighted mean of the connections' p99
    p99_max_ms: float  # the worst connection's p99
    node_rps: list[float]
    jmapd_cores: float
    postgres_cores: float
    client_cores: float
    other_cores: float
    writes: int  # modseqs the run added, summed over the accounts (incl. warm-up)


def weighted(results: list[Result], attr: str) -> float:
    total = sum(r.rps for r in results)
    return sum(getattr(r, attr) * r.rps for r in results) / total if total else float("nan")


async def drive(
    plan: list[tuple[int, str, Account]],
    node_list: list[JmapdServer],
    args: argparse.Namespace,
    database: str,
) -> tuple[list[Result], dict[str, float]]:
    cpu: dict[str, float] = {}

    perf = time.perf_counter
    start = perf() + args.warmup  # loadgen's window, within a few ms

    async def sample() -> None:
        # Processes are looked up off the loop, ahead of the window (a busy loop may run the
        # lookup late), and PostgreSQL's backends again at its end: the connection pools may
        # grow meanwhile, and a backend that appeared in the window counts from zero.
        await asyncio.sleep(args.warmup / 2)
        node_pids = await asyncio.to_thread(lambda: [p for n in node_list for p in n.pids()])
        pg_pids = await asyncio.to_thread(backend_pids, args.admin_url, database)
        await asyncio.sleep(max(0.0, start - perf()))
        t, me, all_ = perf(), sum(os.times()[:2]), busy_seconds()
        jm, pg = cpu_seconds(node_pids), cpu_seconds(pg_pids)
        await asyncio.sleep(max(0.0, start + args.duration - perf()))
        elapsed = perf() - t
        me, all_ = sum(os.times()[:2]) - me, busy_seconds() - all_
        jm_end, pg_end = cpu_seconds(node_pids), cpu_seconds(pg_pids)
        later = await asyncio.to_thread(backend_pids, args.admin_url, database)
        pg_end.update(cpu_seconds([pid for pid in later if pid not in pg_end]))
        cpu["client"] = me / elapsed
        cpu["jmapd"] = cpu_used(jm, jm_end) / elapsed
        cpu["postgres"] = cpu_used(pg, pg_end) / elapsed
        ours = cpu["client"] + cpu["jmapd"] + cpu["postgres"]
        cpu["other"] = max(0.0, all_ / elapsed - ours)

    runs = [
        run(
            node_list[k].url + "/jmap/api",
            body=body(workload, account),
            headers=account.headers,
            concurrency=1,
            duration=args.duration,
            warmup=args.warmup,
        )
        for k, workload, account in plan
    ]
    *results, _ = await asyncio.gather(*runs, sample())
    return list(results), cpu


def measure(
    backend: str,
    count: int,
    data: Path,
    database: str,
    accounts: list[Account],
    args: argparse.Namespace,
    fresh_notes: bool,
) -> list[Row]:
    rows = []
    with nodes(count, data, database) as node_list:
        if fresh_notes:
            create_notes(node_list[0].url, accounts)
        for workload in ("set+get", "toggle"):
            plan = [
                (k, workload, accounts[(k * CONNECTIONS + i) % len(accounts)])
                for k in range(count)
                for i in range(CONNECTIONS)
            ]
            # Prime: every connection's first request (credential check, and the set+get
            # note's tag set once), through the node the connection will use.
            with httpx.Client(timeout=30) as client:
                for k, _, account in plan:
                    call(client, node_list[k].url, account, body(workload, account))
            before = states(node_list[0].url, accounts)
            other = wait_quiet(args.max_other, args.max_wait)
            if other >= args.max_other:
                print(f"# machine still busy ({other:.2f} cores), measuring", file=sys.stderr)
            results, cpu = uvloop.run(drive(plan, node_list, args, database))
            after = states(node_list[0].url, accounts)
            writes = sum(after[a] - before[a] for a in before)
            requests = sum(r.requests for r in results)
            errors = sum(r.errors for r in results)
            if errors:
                samples = [s for r in results for s in r.error_samples][:5]
                print(f"# {errors} errors: {samples}", file=sys.stderr)
            if workload == "set+get" and writes:
                raise RuntimeError(f"set+get was expected to write nothing, wrote {writes}")
            if workload == "toggle" and writes < 2 * (requests - errors):
                raise RuntimeError(f"toggle wrote {writes} modseqs for {requests} requests")
            row = Row(
                backend,
                count,
                workload,
                len(plan),
                requests,
                errors,
                sum(r.rps for r in results),
                weighted(results, "p50_ms"),
                weighted(results, "p99_ms"),
                max(r.p99_ms for r in results),
                [
                    sum(r.rps for r, (k, _, _) in zip(results, plan, strict=True) if k == n)
                    for n in range(count)
                ],
                cpu["jmapd"],
                cpu["postgres"],
                cpu["client"],
                cpu["other"],
                writes,
            )
            print(
                f"# {backend} x{count} {workload:7} {row.rps:6.0f} req/s p50={row.p50_ms:.1f}ms "
                f"p99={row.p99_ms:.1f}ms errors={errors} jmapd={row.jmapd_cores:.2f} "
                f"pg={row.postgres_cores:.2f} client={row.client_cores:.2f} "
                f"other={row.other_cores:.2f} writes={writes}",
                file=sys.stderr,
            )
            rows.append(row)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | nodes | request | connections | req/s (total) | req/s per node | p50 ms "
        "| p99 ms | errors | jmapd CPU (cores) | PostgreSQL CPU (cores) | jmapd CPU µs/req "
        "| PostgreSQL CPU µs/req | client CPU (cores) | other load (cores) |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per_node = ", ".join(f"{x:.0f}" for x in r.node_rps)
        pg, pg_us = "-", "-"
        if r.backend == "postgresql":
            pg, pg_us = f"{r.postgres_cores:.2f}", f"{r.postgres_cores / r.rps * 1e6:.0f}"
        lines.append(
            f"| {r.backend} | {r.nodes} | {r.workload} | {r.connections} | {r.rps:.0f} "
            f"| {per_node} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} "
            f"| {r.jmapd_cores:.2f} | {pg} | {r.jmapd_cores / r.rps * 1e6:.0f} | {pg_us} "
            f"| {r.client_cores:.2f} | {r.other_cores:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite comparison")
    parser.add_argument("--max-other", type=float, default=0.3)
    parser.add_argument(
        "--max-wait", type=float, default=3.0, help="seconds to wait for a quiet machine"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.admin_url = f"{args.server}/postgres"

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    name = f"jmapd_bench_nodes_{os.getpid()}"
    database = f"{args.server}/{name}"
    names = [f"user{i:02d}@bench.test" for i in range(args.accounts)]
    password = "bench-password"
    rows: list[Row] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jmapd-bench-nodes-") as tmp:
        try:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            data = Path(tmp) / "pg"
            ids = add_accounts(data, database, names, password)
            accounts = [Account(i, n, password) for i, n in zip(ids, names, strict=True)]
            print(f"# {len(accounts)} accounts in {time.monotonic() - began:.0f}s", file=sys.stderr)
            for index, count in enumerate(args.nodes):
                rows += measure("postgresql", count, data, database, accounts, args, index == 0)
            if not args.no_sqlite:
                data = Path(tmp) / "sqlite"
                ids = add_accounts(data, "", names, password)
                accounts = [Account(i, n, password) for i, n in zip(ids, names, strict=True)]
                rows += measure("sqlite", 1, data, "", accounts, args, True)
        finally:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(args.admin_url, autocommit=True) as admin,
            ):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()} ({time.monotonic() - began:.0f}s run)"
    )
    print(
        f"{args.accounts} accounts; {CONNECTIONS} connections per node, connection i of node k "
        f"uses account (16k+i) mod {args.accounts}; {args.warmup:g}s warm-up + "
        f"{args.duration:g}s; CPU columns in cores."
    )
    print(
        "NOTE: the machine has only 2 cores, shared by the nodes, PostgreSQL and the load "
        "generator: more nodes here measure contention, not scaling.\n"
    )
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))


if __name__ == "__main__":
    main()
