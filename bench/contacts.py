"""Contacts (RFC 9610) on the card index: ContactCard/query by text and by email prefix over
N cards (default 10,000), and ContactCard/get of 100 cards; p50 at c=1 and throughput at c=8,
on each backend. The figures of docs/performance.md:

    .venv/bin/python -m bench.contacts --backend sqlite,postgresql --cards 10000

- query-text: `text` "garcia" (a surname on 1% of the cards), sorted by name/surname, 50;
- query-email: `email` prefix "ana.gar" (as a client autocompletes; 1% of the cards), sorted
  by name/surname, 50;
- get-100: ContactCard/get of 100 ids with every property.

Each account is filled through ContactCard/set (so every card is validated and indexed as a
client's would be) in a fresh data directory (and database), removed afterwards; on
PostgreSQL, VACUUM ANALYZE then gives the planner the statistics autovacuum would gather
within a minute of a bulk import.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench.fill import add_account, database_flags, headers, jmapd_env
from bench.loadgen import run
from bench.machine import cpu_model
from bench.search import call, create_database, drop_database
from bench.server import JmapdServer

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:contacts"]
GIVEN = [
    "Ana",
    "Ben",
    "Chloé",
    "David",
    "Eva",
    "Farid",
    "Greta",
    "Hiro",
    "Inés",
    "Jonas",
    "Kofi",
    "Lena",
    "Marta",
    "Nils",
    "Olga",
    "Pablo",
    "Qing",
    "Rosa",
    "Sven",
    "Tomás",
]
SURNAME_COUNT = 100
BY_SURNAME = [{"property": "name/surname"}]


def surnames() -> list[str]:
    """100 surnames, none the start of another's words: "Garcia" is on 1% of the cards."""
    heads = ["Gar", "Mül", "Smi", "Ros", "Dub", "Nov", "Kow", "Yam", "Sil", "Jen"]
    tails = ["cia", "ler", "th", "si", "ois", "ak", "ski", "ada", "va", "sen"]
    return [h + t for h in heads for t in tails]


def card(i: int, rng: random.Random) -> dict[str, Any]:
    given, surname = GIVEN[i % len(GIVEN)], surnames()[i % SURNAME_COUNT]
    local = f"{given.lower()}.{surname.lower()}{i}"
    return {
        "uid": f"urn:uuid:bench-{i}",
        "name": {
            "components": [
                {"kind": "given", "value": given},
                {"kind": "surname", "value": surname},
            ],
            "isOrdered": True,
        },
        "emails": {"e1": {"address": f"{local}@example{i % 50}.com", "contexts": {"work": True}}},
        "phones": {"p1": {"number": f"+1 555 {rng.randrange(10**7):07d}"}},
        "organizations": {"o1": {"name": f"Company {i % 300}"}},
        "notes": {"n1": {"note": f"Met at event {i % 40}; follow up about project {i % 70}."}},
    }


def body(calls: list[list[Any]]) -> bytes:
    return orjson.dumps({"using": USING, "methodCalls": calls})


def fill(api_url: str, account: str, n: int) -> float:
    rng = random.Random(9610)
    started = time.perf_counter()
    for start in range(0, n, 500):
        create = {f"c{i}": card(i, rng) for i in range(start, min(n, start + 500))}
        found, error, _ = call(
            api_url, body([["ContactCard/set", {"accountId": account, "create": create}, "s"]])
        )
        if found is None or found.get("notCreated"):
            raise RuntimeError(f"filling failed: {error or found}")
    return time.perf_counter() - started


def drive(api_url: str, request: bytes, clients: int, duration: float) -> dict[str, Any]:
    result = uvloop.run(
        run(
            api_url,
            body=request,
            headers=headers(),
            concurrency=clients,
            duration=duration,
            timeout=60,
        )
    )
    row: dict[str, Any] = {
        "rps": round(result.rps, 1),
        "p50": round(result.p50_ms, 2),
        "p99": round(result.p99_ms, 2),
    }
    if result.errors:
        row["error"] = f"{result.errors} errors, e.g. {result.error_samples[:1]}"
    return row


def scenarios(api_url: str, account: str) -> dict[str, tuple[bytes, int]]:
    """name → (request, how many cards it answers)."""
    text = {
        "accountId": account,
        "filter": {"text": "garcia"},
        "sort": BY_SURNAME,
        "limit": 50,
        "calculateTotal": True,
    }
    email = {
        "accountId": account,
        "filter": {"email": "ana.gar"},
        "sort": BY_SURNAME,
        "limit": 50,
        "calculateTotal": True,
    }
    out: dict[str, tuple[bytes, int]] = {}
    for name, args in (("query-text", text), ("query-email", email)):
        found, error, _ = call(api_url, body([["ContactCard/query", args, "q"]]))
        if found is None:
            raise RuntimeError(f"{name}: {error}")
        out[name] = (body([["ContactCard/query", args, "q"]]), int(found["total"]))
    listed, _, _ = call(
        api_url, body([["ContactCard/query", {"accountId": account, "limit": 100}, "q"]])
    )
    assert listed is not None
    ids = listed["ids"]
    out["get-100"] = (
        body([["ContactCard/get", {"accountId": account, "ids": ids}, "g"]]),
        len(ids),
    )
    return out


def one_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="jmapd-bench-contacts-", dir=args.data))
    database = ""
    if backend == "postgresql":
        database = f"{args.server}/{create_database(args.server)}"
    server = JmapdServer(database_flags(data, database), jmapd_env())
    try:
        add_account(data, database)
        server.wait_ready()
        api_url = server.url + "/jmap/api"
        call(api_url, body([["Core/echo", {}, "e"]]))  # the credential, verified and cached
        import httpx

        account = httpx.get(server.url + "/jmap/session", headers=headers()).json()[
            "primaryAccounts"
        ]["urn:ietf:params:jmap:contacts"]
        seconds = fill(api_url, account, args.cards)
        if database:  # what autovacuum does within a minute of a bulk import (bench/search.py)
            import psycopg

            with psycopg.connect(database, autocommit=True) as db:
                db.execute("VACUUM ANALYZE")
        out: dict[str, Any] = {
            "backend": backend,
            "cards": args.cards,
            "fill_s": round(seconds, 1),
            "rows": [],
        }
        print(f"{backend}: filled {args.cards} cards in {seconds:.1f}s", flush=True)
        for name, (request, matched) in scenarios(api_url, account).items():
            for clients in args.concurrency:
                row = {"scenario": name, "matched": matched, "c": clients}
                row |= drive(api_url, request, clients, args.duration)
                out["rows"].append(row)
                print(f"  {name} c={clients}: {row}", flush=True)
        return out
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
        if database:
            drop_database(args.server, database.rsplit("/", 1)[1])


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | scenario | cards matched | p50 c=1 (ms) | p99 c=1 (ms) | req/s c=8 "
        "| p50 c=8 (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        rows = {(r["scenario"], r["c"]): r for r in result["rows"]}
        for name in ("query-text", "query-email", "get-100"):
            one, eight = rows.get((name, 1), {}), rows.get((name, 8), {})
            lines.append(
                f"| {result['backend']} | {name} | {one.get('matched', '')} | "
                f"{one.get('p50', '')} | {one.get('p99', '')} | {eight.get('rps', '')} | "
                f"{eight.get('p50', '')} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="sqlite,postgresql")
    p.add_argument("--cards", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--data", default=None, help="where the temporary data directories go")
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args()
    results = [one_backend(b, args) for b in args.backend.split(",")]
    print(f"\n{cpu_model()}\n{table(results)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
