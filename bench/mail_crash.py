"""Kill -9 while mail flows (issue 12 item 8): every message jmapd acknowledged is there
exactly once after a restart, and the counts are right.

Each run starts `jmapd serve` on the same data directory (and database) with LMTP, sends
`--messages` messages over `--connections` LMTP connections at once (each message to one
recipient, with a Message-ID of its own), kills the whole server (SIGKILL to its process
group) once a random share of them (20 to 80 %) was answered, starts it again and verifies:

- every message answered 250 is in the Inbox exactly once (found by its Message-ID through
  Email/query and Email/get), and one in flight at the kill (sent, no answer) at most once;
- nothing is there that was not sent;
- the Inbox's totalEmails is the number of Emails in it;
- `jmapd check` reports no problem.

The traffic is a list of loads, each with a ledger of what was acknowledged and a check of
it after the restart: deliveries over LMTP, and `--submissions` drafts sent with
EmailSubmission to a smarthost in this process (it outlives the kill), each of which must
reach it exactly once — save one the server marked handed over in the instant before its
final "." (RFC 1047) when the kill fell in that instant: it reaches it at most once, and is
counted apart ("handed over at the kill", and of those, "sent").

    .venv/bin/python -m bench.mail_crash [--runs 3] [--messages 1000] [--connections 4]
        [--submissions 100]
        [--backend sqlite|postgresql] [--json FILE]

tests/test_mail_crash.py runs a short form of it in the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from aiosmtpd.controller import Controller

from bench.crash import api, cli
from bench.fill import jmapd_env
from bench.machine import free_port, scratch_database
from bench.server import JmapdServer

USER, PASSWORD = "crash@localhost", "crash-password"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
SUBMISSION = "urn:ietf:params:jmap:submission"


class Load(Protocol):
    """One kind of traffic under the kill."""

    name: str

    def args(self) -> list[str]:
        """The `jmapd serve` flags it needs."""
        ...

    def start(self, stop: threading.Event, url: str) -> list[threading.Thread]:
        """Threads that send until they are done or the server (at `url`) is gone."""
        ...

    def acknowledged(self) -> int:
        """How many of its writes were acknowledged so far."""
        ...

    def verify(self, http: httpx.Client, url: str, account: str) -> dict[str, int]:
        """After the restart: acknowledged, lost and duplicated, and its own counts."""
        ...


def message(msgid: str, n: int) -> bytes:
    return (f"From: Sender <sender@remote.example>\r\nTo: {USER}\r\nSubject: crash {n}\r\n"
            f"Message-ID: <{msgid}>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\n"
            f"{'body ' * (20 + n % 200)}\r\n").encode()  # fmt: skip


class Connection:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.reply()
        self.command(b"LHLO crash.example")

    def reply(self) -> int:
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            if line[3:4] != b"-":
                return int(line[:3])

    def command(self, line: bytes) -> int:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def deliver(self, raw: bytes) -> int:
        assert self.command(b"MAIL FROM:<sender@remote.example>") == 250
        assert self.command(f"RCPT TO:<{USER}>".encode()) == 250
        assert self.command(b"DATA") == 354
        self.sock.sendall(raw + b".\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@dataclass
class LMTPLoad:
    """`messages` deliveries over `connections` LMTP connections; Message-IDs unique per run."""

    name = "lmtp"
    run: int
    messages: int
    connections: int
    port: int = field(default_factory=free_port)
    done: set[str] = field(default_factory=set)  # answered 250
    in_flight: set[str] = field(default_factory=set)  # sent, unanswered at the kill
    refused: set[str] = field(default_factory=set)  # answered otherwise (4xx): not stored
    lock: threading.Lock = field(default_factory=threading.Lock)

    def args(self) -> list[str]:
        return ["--lmtp", f"127.0.0.1:{self.port}"]

    def acknowledged(self) -> int:
        return len(self.done)

    def start(self, stop: threading.Event, url: str) -> list[threading.Thread]:
        todo = iter(range(self.messages))
        threads = [threading.Thread(target=self._connection, args=(todo, stop))
                   for _ in range(self.connections)]  # fmt: skip
        for thread in threads:
            thread.start()
        return threads

    def _connection(self, todo: Any, stop: threading.Event) -> None:
        try:
            conn = Connection(self.port)
        except OSError:
            return  # killed before this connection was made
        try:
            while not stop.is_set():
                with self.lock:
                    n = next(todo, None)
                if n is None:
                    return
                msgid = f"lmtp-{self.run}-{n}@crash.example"
                self.in_flight.add(msgid)
                try:
                    code = conn.deliver(message(msgid, n))
                except (OSError, ValueError):
                    return  # the kill: this one stays in flight
                self.in_flight.discard(msgid)
                (self.done if code == 250 else self.refused).add(msgid)
        finally:
            conn.close()

    def verify(self, http: httpx.Client, url: str, account: str) -> dict[str, int]:
        found = inbox_message_ids(http, url, account)
        mine = Counter({m: c for m, c in found.items() if m.startswith(f"lmtp-{self.run}-")})
        return {
            "acknowledged": len(self.done),
            "lost": sum(1 for m in self.done if mine[m] == 0),
            "duplicated": sum(1 for c in mine.values() if c > 1),
            "unexpected": sum(1 for m in mine if m not in self.done and m not in self.in_flight),
            "in flight": len(self.in_flight),
            "in flight stored": sum(1 for m in self.in_flight if mine[m]),
        }


class Smarthost:
    """An SMTP server in this process that outlives jmapd's kill: every Message-ID it took,
    with how many times, and when it first came."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = re.search(rb"(?im)^Message-ID:\s*<([^>]*)>", envelope.original_content)
        msgid = found[1].decode() if found else ""
        with self.lock:
            self.received[msgid] += 1
            self.arrived.setdefault(msgid, time.perf_counter())
        return "250 2.0.0 Ok"

    def count(self, prefix: str) -> Counter[str]:
        with self.lock:
            return Counter({m: c for m, c in self.received.items() if m.startswith(prefix)})


@dataclass
class SubmissionLoad:
    """`submissions` drafts sent with EmailSubmission to a smarthost, ten to a request;
    acknowledged when the response to their request arrived."""

    name = "submission"
    run: int
    submissions: int
    smarthost: Smarthost
    done: set[str] = field(default_factory=set)
    in_flight: set[str] = field(default_factory=set)

    def args(self) -> list[str]:
        return ["--smarthost", f"127.0.0.1:{self.smarthost.controller.port}"]

    def acknowledged(self) -> int:
        return len(self.done)

    def start(self, stop: threading.Event, url: str) -> list[threading.Thread]:
        thread = threading.Thread(target=self._send, args=(stop, url))
        thread.start()
        return [thread]

    def _send(self, stop: threading.Event, url: str) -> None:
        with httpx.Client(auth=(USER, PASSWORD), timeout=30) as http:
            try:
                account, identity, drafts = self._setup(http, url)
            except (httpx.HTTPError, KeyError, StopIteration):
                return
            for start in range(0, self.submissions, 10):
                if stop.is_set():
                    return
                batch = [f"sub-{self.run}-{n}@crash.example"
                         for n in range(start, min(start + 10, self.submissions))]  # fmt: skip
                self.in_flight.update(batch)
                try:
                    responses = post(http, url, submit_calls(account, identity, drafts, batch))
                except (httpx.HTTPError, ValueError):
                    return  # the kill: these stay in flight
                self.in_flight.difference_update(batch)
                created = responses[1][1].get("created") or {}
                self.done.update(m for i, m in enumerate(batch) if f"s{i}" in created)

    def _setup(self, http: httpx.Client, url: str) -> tuple[str, str, str]:
        session = http.get(url + "/jmap/session").json()
        account = session["primaryAccounts"][USING[1]]
        calls = [["Identity/get", {"accountId": account}, "i"],
                 ["Mailbox/get", {"accountId": account}, "m"]]  # fmt: skip
        identities, boxes = (response[1]["list"] for response in post(http, url, calls))
        drafts = next(b["id"] for b in boxes if b["role"] == "drafts")
        return account, identities[0]["id"], drafts

    def verify(self, http: httpx.Client, url: str, account: str) -> dict[str, int]:
        """Once the queue has settled every acknowledged submission: each reached the
        smarthost exactly once, except one the server says it handed over before the
        restart. That one was marked handed over, committed, in the moment before its final
        "." (RFC 1047: sent twice or not at all, there is no third way); the kill may
        have fallen in between, so it arrived at most once."""
        deadline = time.monotonic() + 120
        prefix = f"sub-{self.run}-"
        statuses = submission_statuses(http, url, account)
        while time.monotonic() < deadline and any(
                "queued" in statuses.get(m, ["queued"]) for m in self.done):  # fmt: skip
            time.sleep(0.2)  # the queue drains after the restart
            statuses = submission_statuses(http, url, account)
        time.sleep(2)  # a second copy would come now
        sent = self.smarthost.count(prefix)
        window = {m for m in self.done if "restarted" in statuses.get(m, [])}
        return {
            "acknowledged": len(self.done),
            "lost": sum(1 for m in self.done - window if sent[m] == 0),
            "duplicated": sum(1 for c in sent.values() if c > 1),
            "unexpected": sum(1 for m in sent if m not in self.done and m not in self.in_flight),
            "in flight": len(self.in_flight),
            "in flight stored": sum(1 for m in self.in_flight if sent[m]),
            "handed over at the kill": len(window),
            "handed over at the kill, sent": sum(1 for m in window if sent[m]),
        }


def submission_statuses(http: httpx.Client, url: str, account: str) -> dict[str, list[str]]:
    """Each submitted draft's Message-ID: its recipients' `delivered` values, and "restarted"
    when the server found it handed over when it started again."""
    out: dict[str, list[str]] = {}
    position = 0
    while True:
        query = {"accountId": account, "position": position, "limit": 500}
        get = {
            "accountId": account,
            "properties": ["emailId", "deliveryStatus"],
            "#ids": {"resultOf": "q", "name": "EmailSubmission/query", "path": "/ids"},
        }
        emails = {"accountId": account, "properties": ["messageId"],
                  "#ids": {"resultOf": "s", "name": "EmailSubmission/get",
                           "path": "/list/*/emailId"}}  # fmt: skip
        responses = post(http, url, [["EmailSubmission/query", query, "q"],
                                     ["EmailSubmission/get", get, "s"],
                                     ["Email/get", emails, "e"]])  # fmt: skip
        submissions, found = responses[1][1]["list"], responses[2][1]["list"]
        if not submissions:
            return out
        position += len(submissions)
        msgid = {e["id"]: (e["messageId"] or [""])[0] for e in found}
        for sub in submissions:
            for status in (sub["deliveryStatus"] or {}).values():
                restarted = "before the server restarted" in status["smtpReply"]
                out.setdefault(msgid.get(sub["emailId"], ""), []).extend(
                    [status["delivered"], *(["restarted"] if restarted else [])]
                )


def post(http: httpx.Client, url: str, calls: list[Any]) -> list[Any]:
    r = http.post(url + "/jmap/api", json={"using": [*USING, SUBMISSION], "methodCalls": calls})
    r.raise_for_status()
    responses: list[Any] = r.json()["methodResponses"]
    return responses


def submit_calls(account: str, identity: str, drafts: str, msgids: list[str],
                 sender: str = USER) -> list[Any]:  # fmt: skip
    """One request: the drafts, and a submission of each (referring to it by #id)."""
    emails = {f"e{i}": {
        "mailboxIds": {drafts: True}, "keywords": {"$draft": True}, "messageId": [msgid],
        "from": [{"email": sender}], "to": [{"email": f"to{i}@remote.example"}],
        "subject": msgid, "bodyValues": {"1": {"value": "Sent before the kill?\n"}},
        "textBody": [{"partId": "1", "type": "text/plain"}],
    } for i, msgid in enumerate(msgids)}  # fmt: skip
    submissions = {f"s{i}": {"identityId": identity, "emailId": f"#e{i}"}
                   for i in range(len(msgids))}  # fmt: skip
    return [
        ["Email/set", {"accountId": account, "create": emails}, "e"],
        ["EmailSubmission/set", {"accountId": account, "create": submissions}, "s"],
    ]


def inbox_message_ids(http: httpx.Client, url: str, account: str) -> Counter[str]:
    """How many Emails in the Inbox have each Message-ID."""
    inbox = inbox_of(http, url, account)
    ids: list[str] = []
    while True:
        page = api(
            http,
            url,
            [
                [
                    "Email/query",
                    {
                        "accountId": account,
                        "position": len(ids),
                        "filter": {"inMailbox": inbox["id"]},
                    },
                    "q",
                ]
            ],
        )
        got = page[0][1]["ids"]  # fmt: skip
        if not got:
            break
        ids += got
    found: Counter[str] = Counter()
    for start in range(0, len(ids), 200):
        emails = api(
            http,
            url,
            [
                [
                    "Email/get",
                    {
                        "accountId": account,
                        "ids": ids[start : start + 200],
                        "properties": ["messageId"],
                    },
                    "g",
                ]
            ],
        )[0][1]["list"]
        found.update((e["messageId"] or [""])[0] for e in emails)  # fmt: skip
    return found


def inbox_of(http: httpx.Client, url: str, account: str) -> dict[str, Any]:
    boxes = api(http, url, [["Mailbox/get", {"accountId": account, "ids": None}, "m"]])
    inbox: dict[str, Any] = next(m for m in boxes[0][1]["list"] if m["role"] == "inbox")
    return inbox


def counts_problems(http: httpx.Client, url: str, account: str) -> int:
    """Whether the Inbox's totalEmails differs from what Email/query finds in it."""
    inbox = inbox_of(http, url, account)
    query = {"accountId": account, "filter": {"inMailbox": inbox["id"]}, "calculateTotal": True}
    total = api(http, url, [["Email/query", query, "q"]])[0][1]["total"]
    return int(total != inbox["totalEmails"])


def one_run(data: Path, database: str, loads: list[Load], total: int) -> dict[str, Any]:
    args = ["--data", str(data)] + (["--database", database] if database else [])
    args += [a for load in loads for a in load.args()]
    server = JmapdServer(args, jmapd_env())
    server.wait_ready()
    stop = threading.Event()
    threads = [t for load in loads for t in load.start(stop, server.url)]
    target = int(total * random.uniform(0.2, 0.8))
    deadline = time.monotonic() + 120
    while sum(load.acknowledged() for load in loads) < target and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(server.process.pid, signal.SIGKILL)  # no goodbye: mid-delivery, mid-commit
    stop.set()
    for thread in threads:
        thread.join()
    server.stop()
    again = JmapdServer(args, jmapd_env())
    result: Counter[str] = Counter()
    try:
        again.wait_ready()
        with httpx.Client(auth=(USER, PASSWORD), timeout=60) as http:
            account = http.get(again.url + "/jmap/session").json()["primaryAccounts"][USING[1]]
            for load in loads:
                verified = load.verify(http, again.url, account)
                result.update(verified)
                # which load lost or doubled what: the LMTP deliveries or the submissions
                result.update(
                    {f"{load.name} {key}": verified[key] for key in BAD if key in verified}
                )
            result["count problems"] = counts_problems(http, again.url, account)
    finally:
        again.stop()
    checked = cli(data, database, "check")
    result["check problems"] = 0 if checked.returncode == 0 else len(
        [line for line in checked.stdout.splitlines() if line.startswith("  ")]) or 1  # fmt: skip
    if checked.returncode != 0:
        print(checked.stdout, file=sys.stderr)
    return dict(result)


BAD = ("lost", "duplicated", "unexpected", "count problems", "check problems")
WINDOW = ("handed over at the kill", "handed over at the kill, sent")


def run(runs: int, messages: int, connections: int, data: Path, database: str = "",
        report: Any = print, submissions: int = 100) -> dict[str, int]:  # fmt: skip
    out = cli(data, database, "account", "add", USER, "--password", PASSWORD)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    totals: Counter[str] = Counter()
    smarthost = Smarthost()
    for i in range(runs):
        loads: list[Load] = [LMTPLoad(i, messages, connections)]
        if submissions:
            loads.append(SubmissionLoad(i, submissions, smarthost))
        result = one_run(data, database, loads, messages + submissions)
        report(f"run {i + 1}/{runs}: {result}")
        totals.update(result)
        totals["runs"] += 1
    smarthost.controller.stop()
    return {
        key: totals[key]
        for key in ("runs", "acknowledged", "in flight", "in flight stored", *WINDOW, *BAD)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database(args.backend, args.server, "jmapd_bench_mail_crash") as database,
    ):
        totals = run(
            args.runs,
            args.messages,
            args.connections,
            Path(tmp) / "data",
            database,
            submissions=args.submissions,
        )
    print(f"totals ({args.backend}): {totals}")
    if args.json:
        Path(args.json).write_text(json.dumps({"backend": args.backend, **totals}, indent=2))
    sys.exit(0 if not any(totals[key] for key in BAD) else 1)


if __name__ == "__main__":
    main()
