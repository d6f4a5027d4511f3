"""Email/query, full-text search, SearchSnippet/get and Mailbox/get on large accounts (issue:
full-text search and indexed Email/query).

For each backend (--backend sqlite, postgresql or both, comma-separated) and each N
(--messages, default 10000 and 100000):

1. A data directory, and on PostgreSQL a fresh database `jmapd_bench_search_<random>` on
   --server, passed to `jmapd serve` and the CLI as --database. Without --data both are
   temporary (removed, dropped at the end, also on failure or SIGTERM). With --data DIR they
   are kept: DIR/<backend>-<N>-seed<S>/, the database's name in its file `database`; a later
   run reuses them when they hold N messages already, and continues an interrupted fill.
2. The account from the CLI (`jmapd account add`), `jmapd serve` (granian, 1 worker,
   maxSizeRequest 100 MB, maxConcurrentRequests 1000, as bench/email_get.py), and the Inbox
   filled through the real ingest path (bench/fill.py: upload + Email/import) with the first
   N messages of bench/corpus.py. The fill time is printed, and kept in `fill.json` for reuse.
   On PostgreSQL, VACUUM ANALYZE then gives the planner the statistics autovacuum would
   gather within a minute or so of a bulk import.
3. Checks the marker word W (corpus.MARKER, in about 1% of the messages): Email/query
   {text: W} with calculateTotal, against corpus.marker_count(N, seed).
4. Sends each request once (a method error is reported in its row instead of measuring it),
   then measures it with bench/loadgen.py (closed loop, keep-alive, --duration s after 1 s of
   warm-up) at concurrency 1 and 16:
   (a) Email/query {inMailbox: Inbox}, sort receivedAt descending, limit 50, no total;
   (b) the same with collapseThreads;
   (c) Email/query {text: W}, sort receivedAt descending, limit 50, no total;
   (d) SearchSnippet/get of the ids (c) finds (at most 50) with filter {text: W};
   (e) Mailbox/get of all mailboxes (with their counts);
   (f) Email/get of the 50 ids (a) finds, with the properties of a message list.
   Goals: p50 of (a) and (b) ≤ 10 ms, of (c) ≤ 30 ms. A request whose single try took longer
   than half the measurement window is not driven by loadgen (it would only time out).
5. Reports the resident memory of the server's processes (summed) after the fill (after the
   start when the data is reused) and after the measurements.

    .venv/bin/python -m bench.search [--messages 10000 100000] [--backend sqlite,postgresql]
        [--data DIR] [--duration 5] [--seed 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import uvloop

from bench.corpus import MARKER, marker_count
from bench.email_get import LIST_PROPERTIES
from bench.fill import add_account, database_flags, fill, headers, jmapd_env, request
from bench.loadgen import run
from bench.machine import cpu_model
from bench.server import JmapdServer

BACKENDS = ("sqlite", "postgresql")
NEWEST = [{"property": "receivedAt", "isAscending": False}]
GOALS_MS = {"a": 10.0, "b": 10.0, "c": 30.0}
TIMEOUT = 60.0  # seconds loadgen waits for an answer


# -- storage: data directory and database ------------------------------------------------------


def admin(server: str) -> psycopg.Connection[Any]:
    return psycopg.connect(f"{server}/postgres", autocommit=True)


def database_exists(server: str, name: str) -> bool:
    with admin(server) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


def create_database(server: str) -> str:
    name = f"jmapd_bench_search_{secrets.token_hex(4)}"
    with admin(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(server: str, name: str) -> None:
    with contextlib.suppress(psycopg.Error), admin(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_mb(server: str, name: str) -> float:
    with admin(server) as conn:
        row = conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
    return int(row[0]) / 1e6 if row else float("nan")


def postgres_version(server: str) -> str:
    with admin(server) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


@contextlib.contextmanager
def storage(
    backend: str, n: int, args: argparse.Namespace, tmp: Path
) -> Iterator[tuple[Path, str]]:
    """(data directory, database URL or "" for SQLite) for one run; temporary ones are
    removed afterwards, kept ones (under --data) reused."""
    keep = args.data is not None
    data = (args.data / f"{backend}-{n}-seed{args.seed}") if keep else (tmp / f"{backend}-{n}")
    data.mkdir(parents=True, exist_ok=True)
    name = ""
    try:
        if backend == "postgresql":
            name = postgres_database(data, args.server, keep)
        yield data, f"{args.server}/{name}" if name else ""
    finally:
        if not keep:
            if name:
                drop_database(args.server, name)
            shutil.rmtree(data, ignore_errors=True)


def postgres_database(data: Path, server: str, keep: bool) -> str:
    """The database recorded in the data directory if it still exists, else a new one."""
    recorded = data / "database"
    name = recorded.read_text().strip() if keep and recorded.exists() else ""
    if name and database_exists(server, name):
        return name
    name = create_database(server)
    (data / "fill.json").unlink(missing_ok=True)  # it describes the database that is gone
    if keep:
        recorded.write_text(name + "\n")
    return name


# -- JMAP --------------------------------------------------------------------------------------


def call(api_url: str, body: bytes) -> tuple[dict[str, Any] | None, str, float]:
    """Send one request: (the first method response's arguments or None, the error, ms)."""
    t = time.perf_counter()
    answer = httpx.post(api_url, content=body, headers=headers(), timeout=600)
    took = (time.perf_counter() - t) * 1000
    if answer.status_code != 200:
        return None, f"HTTP {answer.status_code}: {answer.text[:300]}", took
    name, arguments, _ = answer.json()["methodResponses"][0]
    if name == "error":
        detail = arguments.get("description", "")
        return None, f"{arguments.get('type')}" + (f" ({detail})" if detail else ""), took
    return arguments, "", took


def inbox_of(api_url: str, account_id: str) -> tuple[str, int]:
    """The Inbox's id and totalEmails."""
    found, error, _ = call(api_url, request([["Mailbox/get", {"accountId": account_id}]]))
    if found is None:
        raise RuntimeError(f"Mailbox/get: {error}")
    inbox = next(m for m in found["list"] if m["role"] == "inbox")
    return inbox["id"], int(inbox["totalEmails"])


def email_query(account_id: str, filter: dict[str, Any], **more: Any) -> bytes:
    arguments = {"accountId": account_id, "filter": filter, "sort": NEWEST, "limit": 50}
    return request([["Email/query", arguments | {"calculateTotal": False} | more]])


def check_marker(api_url: str, account_id: str, n: int, seed: int) -> dict[str, Any]:
    """How many Emails Email/query {text: W} finds, against how many the corpus has."""
    expected = marker_count(n, seed)
    body = email_query(account_id, {"text": MARKER}, limit=1, calculateTotal=True)
    found, error, took = call(api_url, body)
    out: dict[str, Any] = {"word": MARKER, "expected": expected, "expected_fraction": expected / n}
    if found is None:
        out["error"] = error
        print(f"  W = {MARKER!r}: Email/query failed: {error}; the corpus has {expected}")
        return out
    total = int(found["total"])
    out |= {"found": total, "fraction": total / n, "ms": took}
    print(
        f"  W = {MARKER!r}: Email/query finds {total} of {n} ({total / n:.2%}) in {took:.0f} ms; "
        f"the corpus has {expected} ({expected / n:.2%})"
        + ("" if total == expected else "  <-- MISMATCH"),
        flush=True,
    )
    return out


def requests(api_url: str, account_id: str, inbox: str) -> list[tuple[str, str, bytes, str]]:
    """(key, name, body, note) of the requests (a) to (e); (d) takes the ids (c) finds."""
    text_query = email_query(account_id, {"text": MARKER})
    found, error, _ = call(api_url, text_query)
    inbox_query = email_query(account_id, {"inMailbox": inbox})
    note = ""
    if found is None:  # snippets of Inbox Emails still make a well-formed request
        found, _, _ = call(api_url, inbox_query)
        note = f"ids from (a): (c) failed with {error}"
    ids = found["ids"] if found else []
    snippets = {"accountId": account_id, "filter": {"text": MARKER}, "emailIds": ids}
    listed, _, _ = call(api_url, inbox_query)
    page = {"accountId": account_id, "ids": listed["ids"] if listed else [],
            "properties": LIST_PROPERTIES}  # fmt: skip
    return [
        ("a", "(a) Email/query Inbox newest 50", inbox_query, ""),
        ("b", "(b) (a) + collapseThreads", email_query(
            account_id, {"inMailbox": inbox}, collapseThreads=True), ""),
        ("c", f"(c) Email/query text {MARKER} newest 50", text_query, ""),
        ("d", f"(d) SearchSnippet/get {len(ids)} ids", request(
            [["SearchSnippet/get", snippets]]), note),
        ("e", "(e) Mailbox/get all", request([["Mailbox/get", {"accountId": account_id}]]), ""),
        ("f", "(f) Email/get of (a)'s 50, list properties", request([["Email/get", page]]), ""),
    ]  # fmt: skip


# -- measuring ---------------------------------------------------------------------------------


def drive(api_url: str, body: bytes, concurrency: int, duration: float) -> dict[str, Any]:
    result = uvloop.run(
        run(
            api_url,
            body=body,
            headers=headers(),
            concurrency=concurrency,
            duration=duration,
            timeout=TIMEOUT,
        )
    )
    row: dict[str, Any] = {"rps": result.rps, "p50": result.p50_ms, "p99": result.p99_ms}
    if result.errors:
        row["error"] = f"{result.errors} errors, e.g. {result.error_samples[:1]}"
    elif result.requests == 0:
        row["error"] = f"no answer inside the {duration:g}s window"
    return row


def measure(
    api_url: str, key: str, name: str, body: bytes, note: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """The request once (for method errors and its latency), then at each concurrency."""
    _, error, first_ms = call(api_url, body)
    if not error and first_ms * 2 > args.duration * 1000:
        error = f"not measured: one request took {first_ms / 1000:.1f}s"
    rows = []
    for concurrency in args.concurrency:
        row: dict[str, Any] = {"key": key, "name": name, "c": concurrency, "first_ms": first_ms}
        if note:
            row["note"] = note
        if error:
            row |= {"rps": None, "p50": None, "p99": None, "error": error}
        else:
            row |= drive(api_url, body, concurrency, args.duration)
        if key in GOALS_MS and row["p50"] is not None:
            row["goal_ms"] = GOALS_MS[key]
            row["goal_met"] = row["p50"] <= GOALS_MS[key]
        rows.append(row)
        print(f"  {name} c={concurrency}: {cells(row)}", flush=True)
    return rows


def cells(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"ERROR {row['error']}"
    return f"{row['rps']:.0f} req/s, p50 {row['p50']:.2f} ms, p99 {row['p99']:.2f} ms"


def rss(server: JmapdServer) -> dict[str, Any]:
    per_process = {str(pid): round(mb, 1) for pid, mb in server.rss_mb().items()}
    return {"total": round(sum(per_process.values()), 1), "per_process": per_process}


def size_mb(data: Path) -> float:
    return sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 1e6


# -- one backend and N -------------------------------------------------------------------------


def prepare(server: JmapdServer, data: Path, n: int, seed: int) -> tuple[str, dict[str, Any]]:
    """The account filled with n messages (reusing what the data directory holds); the
    accountId and how the fill went."""
    session = httpx.get(server.url + "/jmap/session", headers=headers(), timeout=60).json()
    account_id = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
    _, count = inbox_of(server.url + "/jmap/api", account_id)
    record = data / "fill.json"
    before = json.loads(record.read_text()) if record.exists() else {}
    if count >= n:
        took = before.get("fill_seconds")
        print(f"  reusing {data}: {count} messages (filled earlier in {took or '?'} s)")
        return account_id, before | {"reused": True, "found": count}
    if count:
        print(f"  {data} holds {count} messages: filling the other {n - count}", flush=True)
    _, ids, took, size = asyncio.run(fill(server, n, seed, start=count))
    earlier = before.get("fill_seconds", 0.0) if count else 0.0
    done = {
        "messages": n,
        "seed": seed,
        "fill_seconds": round(earlier + took, 1),
        "rate": len(ids) / took,
        "resumed_from": count,
        "corpus_mb": round(size / 1e6 + (before.get("corpus_mb", 0.0) if count else 0.0), 1),
    }
    record.write_text(json.dumps(done, indent=1))
    print(f"  filled {len(ids)} messages in {took:.1f}s ({len(ids) / took:.0f} msg/s)", flush=True)
    return account_id, done | {"reused": False}


def filled(
    server: JmapdServer, data: Path, database: str, n: int, seed: int
) -> tuple[str, dict[str, Any]]:
    """prepare(), then on PostgreSQL what autovacuum does shortly after a bulk import:
    statistics (VACUUM ANALYZE)."""
    account_id, done = prepare(server, data, n, seed)
    if database:
        with psycopg.connect(database, autocommit=True) as db:
            db.execute("VACUUM ANALYZE")
    return account_id, done


@contextlib.contextmanager
def filled_store(
    backend: str, n: int, args: argparse.Namespace, tmp: Path
) -> Iterator[tuple[Path, str, JmapdServer, str, dict[str, Any]]]:
    """The store of N messages (filled once, kept where --data says), with the server that
    filled it running: (data, database, server, account id, the fill's record)."""
    with storage(backend, n, args, tmp) as (data, database):
        add_account(data, database)
        server = JmapdServer(database_flags(data, database), jmapd_env())
        try:
            server.wait_ready()
            account_id, fill_record = filled(server, data, database, n, args.seed)
            yield data, database, server, account_id, fill_record
        except BaseException:
            print(f"  the server's last output:\n{server.output()}", flush=True)
            raise
        finally:
            server.stop()


def one_run(backend: str, n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    print(f"\n{backend}, N = {n}:", flush=True)
    with filled_store(backend, n, args, tmp) as (data, database, server, account_id, fill_record):
        out: dict[str, Any] = {"backend": backend, "messages": n, "fill": fill_record}
        out["rss_mb_after_fill"] = rss(server)
        out["data_mb"] = size_mb(data)
        if database:
            out["database_mb"] = database_mb(args.server, database.rsplit("/", 1)[1])
        print(f"  server RSS after fill: {out['rss_mb_after_fill']['total']:.0f} MB")
        api_url = server.url + "/jmap/api"
        out["marker"] = check_marker(api_url, account_id, n, args.seed)
        inbox, _ = inbox_of(api_url, account_id)
        out["rows"] = []
        for key, name, body, note in requests(api_url, account_id, inbox):
            out["rows"] += measure(api_url, key, name, body, note, args)
        out["rss_mb_after_runs"] = rss(server)
        print(f"  server RSS after the runs: {out['rss_mb_after_runs']['total']:.0f} MB")
    return out


# -- report ------------------------------------------------------------------------------------


def table(runs: list[dict[str, Any]], backends: list[str]) -> str:
    """One row per request, N and concurrency; the backends side by side."""
    by = {
        (r["backend"], r["messages"], row["key"], row["c"]): row for r in runs for row in r["rows"]
    }
    head = "| request | N | c |" + "".join(
        f" {b} req/s | {b} p50 ms | {b} p99 ms |" for b in backends
    )
    lines = [head + " goal p50 |", "|---|---:|---:|" + "---:|---:|---:|" * len(backends) + "---|"]
    keys = sorted({(row["key"], r["messages"], row["c"]) for r in runs for row in r["rows"]})
    for key, n, c in keys:
        rows = [by.get((b, n, key, c)) for b in backends]
        name = next(row["name"] for row in rows if row)
        line = f"| {name} | {n:,} | {c} |"
        for row in rows:
            if row is None:
                line += " - | - | - |"
            elif row.get("error"):
                line += f" {row['error'].split(' (')[0][:40]} | - | - |"
            else:
                line += f" {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} |"
        lines.append(line + f" {goal(key, rows)} |")
    return "\n".join(lines)


def goal(key: str, rows: list[dict[str, Any] | None]) -> str:
    """The p50 goal of the request and whether each backend's row meets it."""
    if key not in GOALS_MS:
        return ""
    met = [
        "met" if row["p50"] <= GOALS_MS[key] else "missed"
        for row in rows
        if row and not row.get("error")
    ]
    return f"≤ {GOALS_MS[key]:g} ms: {', '.join(met) or '-'}"


def fill_table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | N | fill | data dir MB | database MB | W found (expected) "
        "| RSS MB after fill | RSS MB after runs |",
        "|---|---:|---|---:|---:|---|---:|---:|",
    ]
    for r in runs:
        f, m = r["fill"], r["marker"]
        took = f.get("fill_seconds")
        fill = f"{took:.0f} s" if took is not None else "?"
        fill += f", {r['messages'] / took:.0f} msg/s" if took else ""
        fill += " (reused)" if f.get("reused") else ""
        found = m.get("error", "").split(" (")[0] or f"{m['found']} ({m['expected']})"
        database = f"{r['database_mb']:.0f}" if "database_mb" in r else "-"
        lines.append(
            f"| {r['backend']} | {r['messages']:,} | {fill} | {r['data_mb']:.0f} "
            f"| {database} | {found} | {r['rss_mb_after_fill']['total']:.0f} "
            f"| {r['rss_mb_after_runs']['total']:.0f} |"
        )
    return "\n".join(lines)


def report(out: dict[str, Any], backends: list[str]) -> None:
    print(f"\nmachine: {out['machine']['cores']} cores, {out['machine']['cpu_model']}, ", end="")
    print(f"Python {out['python']}, SQLite {out['sqlite']}, PostgreSQL {out['postgresql']}")
    print(f"date {out['date']}, load average at start {out['load_average']}")
    print(f"loadgen: {out['duration']:g}s after 1s warm-up; W = {MARKER!r}\n")
    print(fill_table(out["runs"]) + "\n")
    print(table(out["runs"], backends))
    problems = {
        f"{r['backend']} N={r['messages']} {row['name']}: "
        + "; ".join(filter(None, [row.get("error"), row.get("note")]))
        for r in out["runs"]
        for row in r["rows"]
        if row.get("error") or row.get("note")
    }
    for problem in sorted(problems):
        print(problem)


# -- main --------------------------------------------------------------------------------------


def listed(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--messages", nargs="+", default=["10000", "100000"], help="N, several allowed"
    )
    parser.add_argument("--backend", default="sqlite", help="sqlite, postgresql or both: a,b")
    parser.add_argument(
        "--data",
        "--keep",
        type=Path,
        help="keep the filled data (and database names) under DIR and reuse them",
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    args.messages = [int(n) for value in args.messages for n in listed(value)]
    args.backends = listed(args.backend)
    if not args.backends or set(args.backends) - set(BACKENDS):
        parser.error(f"--backend: one or more of {', '.join(BACKENDS)}")
    return args


def main() -> None:
    args = parse_args()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows in a log file too
    # A SIGTERM stops the server, drops scratch databases and removes temporary data too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpu_model": cpu_model(), "cores": os.cpu_count()},
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(args.server) if "postgresql" in args.backends else "-",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "duration": args.duration,
        "seed": args.seed,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="jmapd-bench-search-") as tmp:
        for n in args.messages:
            for backend in args.backends:
                out["runs"].append(one_run(backend, n, args, Path(tmp)))
                if args.json:  # after every run, so a failure keeps what was measured
                    args.json.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    report(out, args.backends)


if __name__ == "__main__":
    main()
