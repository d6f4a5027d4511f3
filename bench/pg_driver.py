"""psycopg 3 (sync, from worker threads) against asyncpg (async) on jmapd's typical statements.

One run, on a scratch database that is created, filled and dropped again (also on failure):

- schema from src/jmapd/store/migrations/postgresql/0001_init.sql, 100 accounts x 1000 Note
  records (about 250-byte JSON each);
- "read": a REPEATABLE READ READ ONLY transaction reading the account's Note state and 50
  records by id (`id = ANY($3)`), like the engine's /get;
- "write": a transaction locking the account row (FOR UPDATE), bumping its modseq
  (UPDATE ... RETURNING) and upserting one record (the engine's statement, with whatever modseq
  columns the current schema has), like the engine's /set of one record.

Drivers (all on one uvloop event loop in this process, closed loop, `concurrency` clients):

- psycopg: psycopg 3 sync + psycopg_pool.ConnectionPool(min 1, max 20, as PostgresStore), each
  transaction run by anyio.to_thread.run_sync with a CapacityLimiter of 8 threads (how the
  engine runs a request's method calls);
- asyncpg: asyncpg.create_pool(min 1, max 20), awaited directly from the event loop;
- asyncpg-bridged: the same asyncpg pool driven from the 8 worker threads, one
  run_coroutine_threadsafe() per statement: what the engine's synchronous code would have to do
  to use asyncpg without being rewritten as async.

Both drivers send the same statements (BEGIN, [SET TRANSACTION], statements, COMMIT) and both
use prepared statements (asyncpg always, psycopg after 5 executions). asyncpg's pool also
resets each connection it gets back (one more round trip), as it does by default. A last row
measures the thread hop alone (anyio.to_thread of a function that does nothing).

Besides tx/s and latency, it reports the CPU time used per transaction by this process (driver
and thread hops: what a jmapd node pays) and by the PostgreSQL backends serving it, and the
CPU other processes used meanwhile (the machine is shared). Every cell is measured in each of
`--rounds` interleaved rounds and the median round (by tx/s) is reported.

    .venv/bin/python -m bench.pg_driver [--duration 3] [--warmup 0.5] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import asyncpg
import orjson
import psycopg
import uvloop
from anyio import CapacityLimiter
from psycopg_pool import ConnectionPool

from bench.machine import busy_seconds, cpu_model, cpu_seconds, cpu_used

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "src/jmapd/store/migrations/postgresql/0001_init.sql"
ACCOUNTS = 100
RECORDS = 1000
READ_IDS = 50
THREADS = 8
POOL_MAX = 20
TYPE = "Note"

READ_ISOLATION = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
STATE = "SELECT state FROM type_states WHERE account_id = $1 AND type = $2"
RECORDS_BY_ID = "SELECT id, data FROM records WHERE account_id = $1 AND type = $2 AND id = ANY($3)"
LOCK = "SELECT 1 FROM accounts WHERE account_id = $1 FOR UPDATE"
BUMP = "UPDATE accounts SET modseq = modseq + 1 WHERE account_id = $1 RETURNING modseq"


def upsert(extra: list[str]) -> str:
    """The engine's record upsert (SQLTransaction.put); `extra` are further modseq columns of
    the current schema (e.g. props_modseq), set like modseq."""
    columns = ", ".join(["modseq", "created_modseq", *extra])
    values = ", ".join(["$4"] * (2 + len(extra)))
    update = ", ".join(f"{c} = excluded.{c}" for c in ["modseq", *extra, "data"])
    return (
        f"INSERT INTO records (account_id, type, id, {columns}, data) "
        f"VALUES ($1, $2, $3, {values}, $5) ON CONFLICT (account_id, type, id) DO UPDATE SET "
        + update
    )


UPSERT = upsert([])  # until create_database() has read the schema


def psycopg_sql(sql: str) -> str:
    """The same statement with psycopg's placeholders ($4 used twice becomes a repeated %s)."""
    out = sql
    for n in range(9, 0, -1):
        out = out.replace(f"${n}", f"%(p{n})s")
    return out


def account_id(n: int) -> str:
    return f"a{n:04d}"


IDS = [f"n{i:04d}" for i in range(RECORDS)]


def note(n: int, version: int) -> bytes:
    """A Note as the engine stores it (orjson of the record), ~250 bytes."""
    return orjson.dumps(
        {
            "title": f"note {n} of the benchmark",
            "body": "lorem ipsum dolor sit amet " * 4,
            "folderId": None,
            "tags": {"seen": True, "v": version % 2 == 0},
            "priority": n % 5,
            "kind": "plain",
            "created": "2026-01-01T00:00:00Z",
            "size": 108,
            "version": version,
        }
    )


# -- the workload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    account: str
    ids: list[str]  # read: 50 ids
    id: str  # write: the record to upsert
    data: bytes


def plan(worker: int, concurrency: int, k: int) -> Op:
    """The k-th operation of a client: deterministic, and clients never share an account (so
    writers never wait for each other's row lock)."""
    mine = [a for a in range(ACCOUNTS) if a % concurrency == worker]
    account = mine[k % len(mine)]
    start = (k * READ_IDS + worker * 7) % (RECORDS - READ_IDS + 1)
    record = (k * 37 + worker) % RECORDS
    return Op(account_id(account), IDS[start : start + READ_IDS], IDS[record], note(record, k))


# psycopg: synchronous, like PostgresStore._transaction (BEGIN is sent by conn.transaction()).
P_STATE, P_RECORDS = psycopg_sql(STATE), psycopg_sql(RECORDS_BY_ID)
P_LOCK, P_BUMP, P_UPSERT = psycopg_sql(LOCK), psycopg_sql(BUMP), psycopg_sql(UPSERT)


def psycopg_read(pool: ConnectionPool, op: Op) -> None:
    with pool.connection() as conn, conn.transaction():
        conn.execute(READ_ISOLATION)
        conn.execute(P_STATE, {"p1": op.account, "p2": TYPE}).fetchone()
        rows = conn.execute(P_RECORDS, {"p1": op.account, "p2": TYPE, "p3": op.ids}).fetchall()
    assert len(rows) == READ_IDS, len(rows)


def psycopg_write(pool: ConnectionPool, op: Op) -> None:
    with pool.connection() as conn, conn.transaction():
        conn.execute(P_LOCK, {"p1": op.account})
        row = conn.execute(P_BUMP, {"p1": op.account}).fetchone()
        assert row is not None
        params = {"p1": op.account, "p2": TYPE, "p3": op.id, "p4": row[0], "p5": op.data}
        conn.execute(P_UPSERT, params)


# asyncpg: awaited from the event loop.
async def asyncpg_read(pool: asyncpg.Pool, op: Op) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(READ_ISOLATION)
        await conn.fetchrow(STATE, op.account, TYPE)
        rows = await conn.fetch(RECORDS_BY_ID, op.account, TYPE, op.ids)
    assert len(rows) == READ_IDS, len(rows)


async def asyncpg_write(pool: asyncpg.Pool, op: Op) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(LOCK, op.account)
        modseq = await conn.fetchval(BUMP, op.account)
        await conn.execute(UPSERT, op.account, TYPE, op.id, modseq, op.data)


# asyncpg from worker threads: every statement is a round trip thread -> loop -> thread.
class Bridge:
    def __init__(self, loop: asyncio.AbstractEventLoop, pool: asyncpg.Pool) -> None:
        self.loop, self.pool = loop, pool

    def call(self, awaitable: Awaitable[Any]) -> Any:
        async def wait() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wait(), self.loop).result()

    def transaction(self, body: Callable[[Any], None]) -> None:
        conn = self.call(self.pool.acquire())
        try:
            tx = conn.transaction()
            self.call(tx.start())
            try:
                body(conn)
            except BaseException:
                self.call(tx.rollback())
                raise
            self.call(tx.commit())
        finally:
            self.call(self.pool.release(conn))


def bridged_read(bridge: Bridge, op: Op) -> None:
    def body(conn: Any) -> None:
        bridge.call(conn.execute(READ_ISOLATION))
        bridge.call(conn.fetchrow(STATE, op.account, TYPE))
        rows = bridge.call(conn.fetch(RECORDS_BY_ID, op.account, TYPE, op.ids))
        assert len(rows) == READ_IDS, len(rows)

    bridge.transaction(body)


def bridged_write(bridge: Bridge, op: Op) -> None:
    def body(conn: Any) -> None:
        bridge.call(conn.execute(LOCK, op.account))
        modseq = bridge.call(conn.fetchval(BUMP, op.account))
        bridge.call(conn.execute(UPSERT, op.account, TYPE, op.id, modseq, op.data))

    bridge.transaction(body)


def nothing() -> None:
    pass


# -- measurement -------------------------------------------------------------------------------


def wait_quiet(max_other: float, max_wait: float) -> float:
    """Wait (at most max_wait s) until the machine is nearly idle; the last load seen."""
    deadline = time.monotonic() + max_wait
    while True:
        a, t = busy_seconds(), time.perf_counter()
        time.sleep(0.5)
        load = (busy_seconds() - a) / (time.perf_counter() - t)
        if load < max_other or time.monotonic() > deadline:
            return load


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, round(pct / 100.0 * len(values) + 0.5) - 1))
    return values[k]


@dataclass
class Cell:
    driver: str
    txn: str
    concurrency: int
    ops: int
    rps: float
    p50_ms: float
    p99_ms: float
    client_us: float  # this process's CPU per transaction
    db_us: float  # the PostgreSQL backends' CPU per transaction
    client_cores: float
    db_cores: float
    other_cores: float  # everything else on the machine meanwhile
    rounds: list[int] = field(default_factory=list)  # tx/s of every round


async def measure(
    op: Callable[[int, int], Awaitable[None]],
    concurrency: int,
    warmup: float,
    duration: float,
    backends: Callable[[], list[int]],
) -> tuple[list[float], dict[str, float]]:
    """Closed loop: `concurrency` clients each running op(worker, k) back to back. Returns the
    latencies (s) of the operations that completed inside [warmup, warmup + duration), and the
    CPU use during that window."""
    perf = time.perf_counter
    begin = perf()
    start, end = begin + warmup, begin + warmup + duration
    latencies: list[float] = []
    cpu: dict[str, float] = {}

    async def client(worker: int) -> None:
        k = 0
        while True:
            t0 = perf()
            if t0 >= end:
                return
            await op(worker, k)
            k += 1
            t1 = perf()
            if start <= t1 < end:
                latencies.append(t1 - t0)

    async def sample() -> None:
        # The backends are looked up ahead (a busy loop may run the lookup late) and again at
        # the end; a backend that appeared meanwhile counts from zero.
        await asyncio.sleep(warmup / 2)
        pids = await asyncio.to_thread(backends)
        await asyncio.sleep(max(0.0, start - perf()))
        t, me, db, all_ = perf(), sum(os.times()[:2]), cpu_seconds(pids), busy_seconds()
        await asyncio.sleep(max(0.0, end - perf()))
        elapsed = perf() - t
        me, all_, db_end = sum(os.times()[:2]) - me, busy_seconds() - all_, cpu_seconds(pids)
        new = [pid for pid in await asyncio.to_thread(backends) if pid not in db_end]
        db_end.update(cpu_seconds(new))
        cpu["client"] = me / elapsed
        cpu["db"] = cpu_used(db, db_end) / elapsed
        cpu["other"] = max(0.0, all_ / elapsed - cpu["client"] - cpu["db"])

    await asyncio.gather(sample(), *(client(w) for w in range(concurrency)))
    latencies.sort()
    return latencies, cpu


# -- scratch database --------------------------------------------------------------------------


def create_database(server: str, name: str) -> str:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SCHEMA.read_text().split(";\n"):
            if statement.strip():
                conn.execute(statement)
        with conn.cursor().copy(
            "COPY accounts (account_id, name, password_hash, modseq, created) FROM STDIN"
        ) as copy:
            for a in range(ACCOUNTS):
                copy.write_row((account_id(a), f"user{a}@bench", "-", RECORDS, 0.0))
        with conn.cursor().copy("COPY type_states (account_id, type, state) FROM STDIN") as copy:
            for a in range(ACCOUNTS):
                copy.write_row((account_id(a), TYPE, RECORDS))
        # NOT NULL modseq columns the schema has beyond these (it evolves) get the modseq.
        known = ("account_id", "type", "id", "modseq", "created_modseq", "destroyed", "data")
        extra = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'records' "
                "AND is_nullable = 'NO' AND column_default IS NULL AND data_type = 'bigint' "
                "ORDER BY ordinal_position"
            )
            if row[0] not in known
        ]
        global UPSERT, P_UPSERT
        UPSERT = upsert(extra)
        P_UPSERT = psycopg_sql(UPSERT)
        columns = ", ".join(["modseq", "created_modseq", *extra])
        with conn.cursor().copy(
            f"COPY records (account_id, type, id, {columns}, data) FROM STDIN"
        ) as copy:
            for a in range(ACCOUNTS):
                for i, id in enumerate(IDS):
                    modseqs = [i + 1] * (2 + len(extra))
                    copy.write_row((account_id(a), TYPE, id, *modseqs, note(i, 0)))
        conn.execute("VACUUM ANALYZE")
    return url


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_pids(url: str, name: str) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
        return [r[0] for r in rows]

    return pids


# -- the run -----------------------------------------------------------------------------------


async def bench(url: str, name: str, args: argparse.Namespace) -> list[Cell]:
    loop = asyncio.get_running_loop()
    limiter = CapacityLimiter(THREADS)
    ppool = ConnectionPool(url, min_size=1, max_size=POOL_MAX, open=True)
    apool = await asyncpg.create_pool(url, min_size=1, max_size=POOL_MAX)
    bridge = Bridge(loop, apool)
    backends = backend_pids(url, name)

    def threaded(fn: Callable[[Any, Op], None], target: Any, c: int) -> Callable[..., Any]:
        async def op(worker: int, k: int) -> None:
            await anyio.to_thread.run_sync(fn, target, plan(worker, c, k), limiter=limiter)

        return op

    def direct(fn: Callable[[Any, Op], Awaitable[None]], c: int) -> Callable[..., Any]:
        async def op(worker: int, k: int) -> None:
            await fn(apool, plan(worker, c, k))

        return op

    drivers: dict[str, dict[str, Callable[[int], Callable[..., Any]]]] = {
        "psycopg": {
            "read": lambda c: threaded(psycopg_read, ppool, c),
            "write": lambda c: threaded(psycopg_write, ppool, c),
        },
        "asyncpg": {
            "read": lambda c: direct(asyncpg_read, c),
            "write": lambda c: direct(asyncpg_write, c),
        },
        "asyncpg-bridged": {
            "read": lambda c: threaded(bridged_read, bridge, c),
            "write": lambda c: threaded(bridged_write, bridge, c),
        },
    }

    def hop(c: int) -> Callable[..., Any]:
        async def op(worker: int, k: int) -> None:
            plan(worker, c, k)  # as the other drivers do
            await anyio.to_thread.run_sync(nothing, limiter=limiter)

        return op

    # The thread hop alone (no database): what the threaded path pays before any statement.
    drivers["to_thread, no query"] = {"none": hop}
    groups = [
        (txn, c, [d for d in args.drivers if txn in drivers[d]])
        for txn in ("read", "write")
        for c in args.concurrency
    ] + [("none", c, ["to_thread, no query"]) for c in args.concurrency]
    measured: dict[tuple[str, str, int], list[Cell]] = {}
    try:
        for r in range(args.rounds):
            load = wait_quiet(args.max_other, args.max_wait)
            print(f"# round {r + 1}: machine load before {load:.2f} cores", file=sys.stderr)
            for txn, concurrency, names in groups:
                # Each round starts the group with another driver: none always goes first.
                shift = r % len(names)
                for driver in names[shift:] + names[:shift]:
                    op = drivers[driver][txn](concurrency)
                    lat, cpu = await measure(op, concurrency, args.warmup, args.duration, backends)
                    ops = len(lat)
                    cell = Cell(
                        driver,
                        txn,
                        concurrency,
                        ops,
                        ops / args.duration,
                        percentile(lat, 50) * 1000,
                        percentile(lat, 99) * 1000,
                        cpu["client"] * args.duration / ops * 1e6,
                        cpu["db"] * args.duration / ops * 1e6,
                        cpu["client"],
                        cpu["db"],
                        cpu["other"],
                    )
                    print(
                        f"# {driver:15} {txn:5} c={concurrency:<2} {cell.rps:7.0f}/s "
                        f"p50={cell.p50_ms:.2f}ms p99={cell.p99_ms:.2f}ms "
                        f"client={cell.client_us:.0f}us db={cell.db_us:.0f}us "
                        f"other={cell.other_cores:.2f}",
                        file=sys.stderr,
                    )
                    measured.setdefault((txn, driver, concurrency), []).append(cell)
    finally:
        await apool.close()
        await asyncio.to_thread(ppool.close)
    cells = []
    for runs in measured.values():
        # The median round by tx/s, with every round's tx/s beside it.
        cell = sorted(runs, key=lambda c: c.rps)[(len(runs) - 1) // 2]
        cell.rounds = [round(c.rps) for c in runs]
        cells.append(cell)
    return cells


def table(cells: list[Cell]) -> str:
    lines = [
        "| transaction | driver | concurrency | tx/s | p50 ms | p99 ms "
        "| client CPU µs/tx | PostgreSQL CPU µs/tx | other load (cores) | tx/s of each round |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c.txn} | {c.driver} | {c.concurrency} | {c.rps:.0f} | {c.p50_ms:.2f} "
            f"| {c.p99_ms:.2f} | {c.client_us:.0f} | {c.db_us:.0f} | {c.other_cores:.2f} "
            f"| {', '.join(map(str, c.rounds))} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--drivers",
        nargs="+",
        default=["psycopg", "asyncpg", "asyncpg-bridged"],
        choices=["psycopg", "asyncpg", "asyncpg-bridged"],
    )
    parser.add_argument(
        "--max-other",
        type=float,
        default=0.3,
        help="before each round, wait until other processes use fewer cores than this",
    )
    parser.add_argument("--rounds", type=int, default=3, help="report the median round")
    parser.add_argument(
        "--max-wait", type=float, default=5.0, help="seconds to wait for a quiet machine"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    # SIGTERM (a timeout, a ^C from a supervisor) still drops the scratch database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    name = f"jmapd_bench_pgdriver_{os.getpid()}"
    started = time.monotonic()
    try:
        url = create_database(args.server, name)
        print(
            f"# scratch database {name} filled in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
        cells = uvloop.run(bench(url, name, args))
    finally:
        with contextlib.suppress(psycopg.Error):
            drop_database(args.server, name)
    with psycopg.connect(f"{args.server}/postgres") as conn:
        server_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    versions = {
        "psycopg": psycopg.__version__,
        "psycopg impl": psycopg.pq.__impl__,
        "asyncpg": asyncpg.__version__,
        "PostgreSQL": server_version,
    }
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"{ACCOUNTS} accounts x {RECORDS} records; read = state + {READ_IDS} records by id "
        f"(REPEATABLE READ READ ONLY); write = lock + modseq + upsert; psycopg from "
        f"{THREADS} threads (anyio.to_thread), pools max {POOL_MAX}; "
        f"{args.warmup:g}s warm-up + {args.duration:g}s per cell, median of {args.rounds} "
        "interleaved rounds\n"
    )
    print(table(cells))
    if args.json:
        args.json.write_text(
            json.dumps({"versions": versions, "cells": [asdict(c) for c in cells]}, indent=1)
        )


if __name__ == "__main__":
    main()
