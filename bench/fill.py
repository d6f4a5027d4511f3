"""One way for the benchmarks to make an account and fill it with the synthetic corpus.

- `jmapd_env()`: our environment without anyone's JMAPD_* settings, with the benchmark limits
  (maxSizeRequest 100 MB, maxConcurrentRequests 1000) and src/ on PYTHONPATH;
- `add_account(data, database)`: the benchmark account, made with the CLI (`jmapd account add`),
  unless it exists already;
- `fill(server, n, seed)`: the account's Inbox filled through the real ingest path with the
  first n messages of bench/corpus.py. Each message is uploaded to the session's uploadUrl
  (4 uploads in flight, the default maxConcurrentUpload), then one Email/import per batch of
  200 with the message's Date as receivedAt, $seen on 80% and $flagged on 3%. `start` skips
  messages an interrupted fill imported already (the corpus and the keywords are
  deterministic, so the result is the same as one uninterrupted fill).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.corpus import dated_messages
from bench.server import JmapdServer

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
USER, PASSWORD = "bench@localhost", "bench-password"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
BATCH = 200
UPLOADS_IN_FLIGHT = 4


def jmapd_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JMAPD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["JMAPD_MAX_SIZE_REQUEST"] = str(100_000_000)
    env["JMAPD_MAX_CONCURRENT_REQUESTS"] = "1000"
    env["JMAPD_WORKERS"] = "1"  # as measured in docs/performance.md; bench.scenarios sets its own
    return env


def database_flags(data: Path, database: str = "") -> list[str]:
    """--data (and --database unless SQLite) for `jmapd serve` and the CLI."""
    return ["--data", str(data)] + (["--database", database] if database else [])


def add_account(data: Path, database: str = "") -> None:
    """The benchmark account (USER, PASSWORD), unless the store has it already."""
    cli = [PY, "-m", "jmapd.cli", "account"]
    listed = subprocess.run(
        [*cli, "list", *database_flags(data, database)],
        env=jmapd_env(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    if USER in listed.stdout.split():
        return
    subprocess.run(
        [*cli, "add", USER, "--password", PASSWORD, *database_flags(data, database)],
        env=jmapd_env(), check=True, capture_output=True,
    )  # fmt: skip


def headers() -> dict[str, str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}


def request(calls: list[list[Any]]) -> bytes:
    return orjson.dumps(
        {"using": USING, "methodCalls": [[m, a, f"c{i}"] for i, (m, a) in enumerate(calls)]}
    )


async def api(client: httpx.AsyncClient, url: str, calls: list[list[Any]]) -> list[Any]:
    r = await client.post(url, content=request(calls), headers=headers())
    r.raise_for_status()
    answers: list[Any] = r.json()["methodResponses"]
    for name, args, _ in answers:
        if name == "error" or args.get("notCreated"):
            raise RuntimeError(str(answers)[:2000])
    return answers


class Session:
    """What the fill needs from the session: account, API and upload URLs, the Inbox."""

    def __init__(self, server_url: str, session: dict[str, Any]) -> None:
        self.account_id: str = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        self.api_url = _absolute(server_url, session["apiUrl"])
        upload = session["uploadUrl"].replace("{accountId}", self.account_id)
        self.upload_url = _absolute(server_url, upload)
        self.inbox = ""


def _absolute(base: str, url: str) -> str:
    return base + url if url.startswith("/") else url


async def open_session(client: httpx.AsyncClient, server_url: str) -> Session:
    answer = await client.get(server_url + "/jmap/session", headers=headers())
    answer.raise_for_status()
    session = Session(server_url, answer.json())
    boxes = await api(client, session.api_url, [["Mailbox/get", {"accountId": session.account_id}]])
    session.inbox = next(m["id"] for m in boxes[0][1]["list"] if m["role"] == "inbox")
    return session


def _keywords(rng: random.Random) -> dict[str, bool]:
    keywords = {}
    if rng.random() < 0.8:
        keywords["$seen"] = True
    if rng.random() < 0.03:
        keywords["$flagged"] = True
    return keywords


async def fill(
    server: JmapdServer, n: int, seed: int, start: int = 0
) -> tuple[str, list[str], float, int]:
    """Upload and import messages start..n-1 of the corpus of n; (accountId, the new email ids
    in import order, seconds, bytes)."""
    async with httpx.AsyncClient(timeout=300) as client:
        session = await open_session(client, server.url)
        upload_headers = dict(headers(), **{"Content-Type": "message/rfc822"})
        slots = asyncio.Semaphore(UPLOADS_IN_FLIGHT)

        async def upload(raw: bytes) -> str:
            async with slots:
                r = await client.post(session.upload_url, content=raw, headers=upload_headers)
            if r.status_code != 201:
                raise RuntimeError(f"upload: {r.status_code} {r.text[:500]}")
            return str(r.json()["blobId"])

        ids: list[str] = []
        total_bytes = 0
        corpus = itertools.islice(dated_messages(n, seed), start, None)
        rng_keywords = random.Random(seed + 1)
        for _ in range(start):
            _keywords(rng_keywords)
        started = last = time.perf_counter()
        upload_time = import_time = 0.0
        while start + len(ids) < n:
            batch = [next(corpus) for _ in range(min(BATCH, n - start - len(ids)))]
            total_bytes += sum(len(raw) for raw, _ in batch)
            t = time.perf_counter()
            blob_ids = await asyncio.gather(*(upload(raw) for raw, _ in batch))
            t2 = time.perf_counter()
            emails = {
                f"e{i}": {
                    "blobId": blob_id,
                    "mailboxIds": {session.inbox: True},
                    "keywords": _keywords(rng_keywords),
                    "receivedAt": received,
                }
                for i, (blob_id, (_, received)) in enumerate(zip(blob_ids, batch, strict=True))
            }
            answers = await api(
                client,
                session.api_url,
                [["Email/import", {"accountId": session.account_id, "emails": emails}]],
            )
            import_time += time.perf_counter() - t2
            upload_time += t2 - t
            created = answers[0][1]["created"]
            ids += [created[f"e{i}"]["id"] for i in range(len(batch))]
            now = time.perf_counter()
            if now - last > 10 or start + len(ids) == n:
                last = now
                took = now - started
                print(
                    f"  {start + len(ids)}/{n} messages, {took:.0f}s, {len(ids) / took:.0f} msg/s "
                    f"(upload {upload_time:.0f}s, Email/import {import_time:.0f}s, "
                    f"last batch import {now - t2:.2f}s)",
                    flush=True,
                )
        return session.account_id, ids, time.perf_counter() - started, total_bytes
