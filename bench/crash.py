"""Kill -9 under load (issue 10): no acknowledged write is lost or duplicated, and `jmapd
check` finds nothing wrong afterwards.

Each run starts `jmapd serve` on the same data directory (and database), lets `--clients`
threads write for a random time up to `--seconds`, each through its own mailbox, then kills
the whole server (SIGKILL to its process group) mid-flight, starts it again and verifies:

- every Email whose import was acknowledged (HTTP 200 with it in `created`) is there, once
  (a Message-ID of its own, searched for with the header filter);
- every acknowledged keyword change holds, unless a later one was in flight at the kill (then
  either value is right);
- every acknowledged destroy holds;
- `jmapd check` reports no problem.

    .venv/bin/python -m bench.crash [--runs 20] [--seconds 3] [--clients 4]
        [--backend sqlite|postgresql] [--json FILE]

tests/test_crash.py runs a short form of it in the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.fill import PY, jmapd_env
from bench.machine import scratch_database
from bench.server import JmapdServer

USER, PASSWORD = "crash@localhost", "crash-password"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


@dataclass
class Ledger:
    """What the server acknowledged to one client, and what it had in flight."""

    mailbox: str
    imported: dict[str, str] = field(default_factory=dict)  # Message-ID → Email id
    seen: dict[str, bool] = field(default_factory=dict)  # Email id → acknowledged $seen
    pending_seen: dict[str, bool] = field(default_factory=dict)  # in flight at the kill
    destroyed: set[str] = field(default_factory=set)
    pending_destroy: set[str] = field(default_factory=set)  # in flight at the kill
    pending_import: set[str] = field(default_factory=set)  # Message-IDs in flight


def cli(data: Path, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--data", str(data)] + (["--database", database] if database else [])
    return subprocess.run([PY, "-m", "jmapd.cli", *args, *flags], env=jmapd_env(),
                          capture_output=True, text=True, check=False)  # fmt: skip


def api(http: httpx.Client, url: str, calls: list[Any]) -> list[Any]:
    r = http.post(url + "/jmap/api", json={"using": USING, "methodCalls": calls})
    r.raise_for_status()
    responses: list[Any] = r.json()["methodResponses"]
    return responses


def message(msgid: str, i: int) -> bytes:
    return (f"From: load@example.com\r\nTo: crash@localhost\r\nSubject: load {i}\r\n"
            f"Message-ID: <{msgid}>\r\n\r\n{'body ' * (20 + i % 200)}\r\n").encode()  # fmt: skip


def client_loop(url: str, account: str, ledger: Ledger, stop: threading.Event) -> None:
    """Import, toggle $seen and destroy, recording what was acknowledged, until the kill."""
    rng = random.Random()
    with httpx.Client(auth=(USER, PASSWORD), timeout=30) as http:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                live = [e for e in ledger.imported.values() if e not in ledger.destroyed]
                action = rng.random()
                if action < 0.5 or not live:
                    msgid = f"{secrets.token_hex(8)}@crash"
                    ledger.pending_import.add(msgid)
                    upload = http.post(f"{url}/jmap/upload/{account}/", content=message(msgid, i))
                    blob = upload.json()["blobId"]
                    got = api(
                        http,
                        url,
                        [
                            [
                                "Email/import",
                                {
                                    "accountId": account,
                                    "emails": {
                                        "e": {"blobId": blob, "mailboxIds": {ledger.mailbox: True}}
                                    },
                                },
                                "i",
                            ]
                        ],
                    )
                    ledger.imported[msgid] = got[0][1]["created"]["e"]["id"]
                    ledger.pending_import.discard(msgid)
                elif action < 0.9:
                    email, value = rng.choice(live), rng.random() < 0.5
                    ledger.pending_seen[email] = value
                    got = api(
                        http,
                        url,
                        [
                            [
                                "Email/set",
                                {
                                    "accountId": account,
                                    "update": {email: {"keywords/$seen": value or None}},
                                },
                                "s",
                            ]
                        ],
                    )
                    assert got[0][1]["updated"] is not None and email in got[0][1]["updated"]
                    ledger.seen[email] = value
                    del ledger.pending_seen[email]
                else:
                    email = rng.choice(live)
                    ledger.pending_destroy.add(email)
                    got = api(
                        http, url, [["Email/set", {"accountId": account, "destroy": [email]}, "d"]]
                    )
                    assert got[0][1]["destroyed"] == [email]
                    ledger.destroyed.add(email)
                    ledger.pending_destroy.discard(email)
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                if stop.is_set():
                    return
                time.sleep(0.05)  # the server is gone (killed): the loop ends with stop


def verify(url: str, account: str, ledgers: list[Ledger]) -> dict[str, int]:
    """Lost and duplicated acknowledged writes."""
    lost = duplicated = acknowledged = 0
    with httpx.Client(auth=(USER, PASSWORD), timeout=60) as http:
        for ledger in ledgers:
            for msgid, email in ledger.imported.items():
                acknowledged += 1
                found = api(
                    http,
                    url,
                    [
                        [
                            "Email/query",
                            {
                                "accountId": account,
                                "filter": {"header": ["Message-ID", f"<{msgid}>"]},
                            },
                            "q",
                        ]
                    ],
                )[0][1]["ids"]
                if email in ledger.destroyed:
                    lost += bool(found)  # a destroy that did not hold
                    duplicated += len(found) > 1
                    continue
                # A destroy in flight at the kill may or may not have been committed.
                lost += email not in found and email not in ledger.pending_destroy
                duplicated += len(found) > 1
            ids = [e for e in ledger.seen if e not in ledger.destroyed]
            got = api(
                http,
                url,
                [
                    [
                        "Email/get",
                        {"accountId": account, "ids": ids, "properties": ["keywords"]},
                        "g",
                    ]
                ],
            )[0][1]
            for email in got["list"]:
                value = email["keywords"].get("$seen", False)
                allowed = {ledger.seen[email["id"]]}
                if email["id"] in ledger.pending_seen:
                    allowed.add(ledger.pending_seen[email["id"]])
                acknowledged += 1
                lost += value not in allowed
            acknowledged += len(ledger.destroyed)
    return {"acknowledged": acknowledged, "lost": lost, "duplicated": duplicated}


def one_run(data: Path, database: str, clients: int, seconds: float) -> dict[str, Any]:
    args = ["--data", str(data)] + (["--database", database] if database else [])
    server = JmapdServer(args, jmapd_env())
    server.wait_ready()
    with httpx.Client(auth=(USER, PASSWORD), timeout=30) as http:
        account = http.get(server.url + "/jmap/session").json()["primaryAccounts"][USING[1]]
        names = {f"c{i}": {"name": f"crash {secrets.token_hex(4)}"} for i in range(clients)}
        made = api(http, server.url, [["Mailbox/set", {"accountId": account, "create": names},
                                        "m"]])[0][1]["created"]  # fmt: skip
    ledgers = [Ledger(made[f"c{i}"]["id"]) for i in range(clients)]
    stop = threading.Event()
    threads = [threading.Thread(target=client_loop, args=(server.url, account, ledger, stop))
               for ledger in ledgers]  # fmt: skip
    for thread in threads:
        thread.start()
    time.sleep(random.uniform(seconds / 3, seconds))
    os.killpg(server.process.pid, signal.SIGKILL)  # no goodbye: mid-request, mid-commit
    stop.set()
    for thread in threads:
        thread.join()
    server.stop()
    again = JmapdServer(args, jmapd_env())
    try:
        again.wait_ready()
        result = verify(again.url, account, ledgers)
    finally:
        again.stop()
    checked = cli(data, database, "check")
    result["check problems"] = (
        0
        if checked.returncode == 0
        else len([line for line in checked.stdout.splitlines() if line.startswith("  ")]) or 1
    )
    if checked.returncode != 0:
        print(checked.stdout, file=sys.stderr)
    return result


def run(runs: int, seconds: float, clients: int, data: Path, database: str = "",
        report: Any = print) -> dict[str, Any]:  # fmt: skip
    out = cli(data, database, "account", "add", USER, "--password", PASSWORD)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    totals = {"runs": 0, "acknowledged": 0, "lost": 0, "duplicated": 0, "check problems": 0}
    for i in range(runs):
        result = one_run(data, database, clients, seconds)
        report(f"run {i + 1}/{runs}: {result}")
        totals["runs"] += 1
        for key in ("acknowledged", "lost", "duplicated", "check problems"):
            totals[key] += result[key]
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database(args.backend, args.server, "jmapd_bench_crash") as database,
    ):
        totals = run(args.runs, args.seconds, args.clients, Path(tmp) / "data", database)
    print(f"totals ({args.backend}): {totals}")
    if args.json:
        Path(args.json).write_text(json.dumps({"backend": args.backend, **totals}, indent=2))
    sys.exit(0 if totals["lost"] == totals["duplicated"] == totals["check problems"] == 0 else 1)


if __name__ == "__main__":
    main()
