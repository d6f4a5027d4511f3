"""Push latency with many idle streams (issue: push latency): the time from a change (an
Email/set that toggles $seen) to its StateChange on every EventSource stream and WebSocket
of the account, with `--streams` idle EventSource streams and as many idle WebSockets open.
Goal: p99 < 100 ms on 1 and 2 workers. Also the server's memory per idle stream.

For each `--workers` count, on a fresh data directory (and a fresh database with `--backend
postgresql`):

1. Makes `--accounts` accounts with the CLI (push0@localhost, …), starts `jmapd serve` with
   maxEventSources and the free failed logins raised, and creates one Email in each account's
   Inbox. The streams are spread evenly over the accounts: each stream of an account gets
   every change of that account (with 10 accounts and 1,000 + 1,000 streams, a change reaches
   100 EventSources and 100 WebSockets); `--accounts 1` puts every stream on one account.
2. Reads the server's resident memory (summed over its processes), opens the EventSource
   streams (types=*, closeafter=no, ping=0; open when the server's first comment arrives),
   reads it again, opens the WebSockets (subprotocol jmap, then WebSocketPushEnable with
   dataTypes null), reads it again: memory per idle stream = the difference / streams.
   Streams are opened `--open-concurrency` at a time, all with HTTP Basic credentials; if one
   does not open within `--open-timeout` seconds, the others are not tried. (Each open
   EventSource holds one of granian's per-worker request slots, backlog 1024 // workers: the
   ones past that get no answer, and nor does any other request to that worker.)
3. One warm-up change per account, waited for on every stream (a WebSocket says nothing when
   push is on: this is how a stream is known to listen); then `--idle` seconds of nothing
   (the server's CPU then is reported: the streams' credential re-checks).
4. `--changes` changes, one every `--interval` seconds, round robin over the accounts. The
   latency of a change on a stream: from just before the Email/set request is sent to the
   moment the stream's first event with an Email state at least the one Email/set answered
   arrived (stamped where the bytes arrive, in the protocol's data_received, before parsing;
   the bench is one uvloop process). A stream without such an event `--settle` seconds after
   the last change counts as a dropped event. The changes go over one keep-alive connection,
   so to one worker: with 2 workers, the streams on the other one are told through the
   workers' fan-out (SQLite) or NOTIFY (PostgreSQL). p99 needs many changes: the worker's
   full garbage collections (about 0.1 s with 2,000 streams open, one every ten seconds or
   so in a try) delay whichever changes they meet; with 50 changes, p99 is the worst one.

Prints p50/p99/max per kind, the Email/set round trip, memory, the server's CPU while idle and
how the sockets spread over the server's processes, and what the server logged (errors,
4xx/5xx answers).

    .venv/bin/python -m bench.push_latency [--streams 1000] [--accounts 10] [--changes 200]
        [--interval 0.1] [--workers 1 2] [--backend sqlite|postgresql]
        [--env JMAPD_NAME=VALUE ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
import uvloop
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from bench.crash import cli
from bench.fill import jmapd_env
from bench.machine import cpu_model, cpu_seconds, scratch_database
from bench.server import JmapdServer

PASSWORD = "push-password"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
MAIL = "urn:ietf:params:jmap:mail"
WEBSOCKET = "urn:ietf:params:jmap:websocket"
PUSH_ENABLE = orjson.dumps({"@type": "WebSocketPushEnable", "dataTypes": None})


def basic(name: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()


@dataclass
class Account:
    name: str
    id: str = ""
    api_url: str = ""
    eventsource_url: str = ""
    websocket_url: str = ""
    email: str = ""
    seen: bool = False


@dataclass
class Change:
    account: Account
    sent: float  # perf_counter just before the request
    state: int  # the Email state Email/set answered
    round_trip: float


class Stream(asyncio.Protocol):
    """An idle push stream of one account: the time and Email state of each event it gets."""

    kind = ""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.events: list[tuple[float, int]] = []
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.lost = False  # the connection ended (not by us)
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = not self.closing
        self.fail(f"connection closed ({exc!r})")

    def fail(self, why: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(why))

    def changed(self, stamp: float, body: bytes) -> None:
        message = orjson.loads(body)
        if message.get("@type") != "StateChange":
            return
        state = message["changed"].get(self.account.id, {}).get("Email")
        if state is not None:
            self.events.append((stamp, int(state)))

    def close(self) -> None:
        self.closing = True
        if not self.opened.done():
            self.opened.cancel()
        if self.transport is not None:
            self.transport.close()


class EventSourceStream(Stream):
    """GET of the eventSourceUrl over a raw HTTP/1.1 connection (chunked or not)."""

    kind = "EventSource"

    def __init__(self, account: Account, host: str) -> None:
        super().__init__(account)
        self.host = host
        self.head = b""
        self.headers_done = False
        self.chunked = False
        self.raw = b""
        self.need: int | None = None  # octets left of the current chunk
        self.text = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        url = self.account.eventsource_url
        parts = urlsplit(
            url.replace("{types}", "*").replace("{closeafter}", "no").replace("{ping}", "0")
        )
        target = parts.path + ("?" + parts.query if parts.query else "")
        assert self.transport is not None
        self.transport.write(
            f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: {basic(self.account.name)}\r\nAccept: text/event-stream\r\n"
            "Cache-Control: no-cache\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        stamp = time.perf_counter()
        if not self.headers_done:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end], self.head[end + 4 :]
            self.headers_done = True
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                self.fail(f"{status.decode(errors='replace')} {data[:300]!r}")
                self.close()
                return
            self.chunked = b"transfer-encoding: chunked" in head.lower()
        if self.chunked:
            self._chunks(stamp, data)
        else:
            self._events(stamp, data)

    def _chunks(self, stamp: float, data: bytes) -> None:
        self.raw += data
        while self.raw:
            if self.need is None:
                end = self.raw.find(b"\r\n")
                if end < 0:
                    return
                line, self.raw = self.raw[:end], self.raw[end + 2 :]
                if line:  # (empty: the CRLF after a chunk's data)
                    self.need = int(line.split(b";")[0], 16)
                    if self.need == 0:
                        self.fail("the stream ended")
                        return
                continue
            piece, self.raw = self.raw[: self.need], self.raw[self.need :]
            self.need -= len(piece)
            if self.need == 0:
                self.need = None
            self._events(stamp, piece)

    def _events(self, stamp: float, data: bytes) -> None:
        self.text += data
        while b"\n\n" in self.text:
            block, self.text = self.text.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b":") and not self.opened.done():
                    self.opened.set_result(None)  # subscribed
                elif line.startswith(b"data:"):
                    self.changed(stamp, line[5:].strip())


class WebSocketStream(Stream):
    """RFC 8887 over websockets' sans-I/O client protocol (so that arrival is stamped as
    early as for the EventSource streams)."""

    kind = "WebSocket"

    def __init__(self, account: Account) -> None:
        super().__init__(account)
        self.ws = ClientProtocol(
            parse_uri(account.websocket_url), subprotocols=[Subprotocol("jmap")]
        )
        self.fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        request = self.ws.connect()
        request.headers["Authorization"] = basic(self.account.name)
        self.ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        stamp = time.perf_counter()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if event.status_code != 101 or self.ws.state is not State.OPEN:
                    self.fail(f"handshake: {event.status_code} {event.body[:300]!r}")
                    continue
                self.ws.send_text(PUSH_ENABLE)
                if not self.opened.done():
                    self.opened.set_result(None)
            elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.CONT):
                self.fragments.append(bytes(event.data))
                if event.fin:
                    self.changed(stamp, b"".join(self.fragments))
                    self.fragments = []
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()


async def open_streams(
    factory: Callable[[], Stream], n: int, concurrency: int, timeout: float, port: int
) -> tuple[list[Stream], Counter[str]]:
    """Open n streams, `concurrency` at a time; after one timeout the rest are not tried."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(concurrency)
    opened: list[Stream] = []
    failures: Counter[str] = Counter()
    stalled = False

    async def one() -> None:
        nonlocal stalled
        async with slots:
            if stalled:
                failures["not tried (an earlier one timed out)"] += 1
                return
            stream = factory()
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: stream, "127.0.0.1", port), timeout
                )
                await asyncio.wait_for(asyncio.shield(stream.opened), timeout)
                opened.append(stream)
            except TimeoutError:
                stalled = True
                failures[f"no answer within {timeout:g} s"] += 1
                stream.close()
            except (OSError, ConnectionError) as e:
                failures[re.sub(r"\d{4,}", "N", str(e))[:200]] += 1
                stream.close()

    await asyncio.gather(*(one() for _ in range(n)))
    return opened, failures


async def api(client: httpx.AsyncClient, account: Account, calls: list[Any]) -> list[Any]:
    r = await client.post(
        account.api_url,
        content=orjson.dumps({"using": USING, "methodCalls": calls}),
        headers={"Authorization": basic(account.name), "Content-Type": "application/json"},
    )
    r.raise_for_status()
    answers: list[Any] = r.json()["methodResponses"]
    for name, args, _ in answers:
        if name == "error" or args.get("notCreated") or args.get("notUpdated"):
            raise RuntimeError(str(answers)[:2000])
    return answers


async def prepare(client: httpx.AsyncClient, url: str, account: Account) -> None:
    """The account's URLs and id, and one Email in its Inbox."""
    r = await client.get(url + "/jmap/session", headers={"Authorization": basic(account.name)})
    r.raise_for_status()
    session = r.json()
    account.id = session["primaryAccounts"][MAIL]
    account.api_url = urljoin(url, session["apiUrl"])
    account.eventsource_url = urljoin(url, session["eventSourceUrl"])
    account.websocket_url = session["capabilities"][WEBSOCKET]["url"]
    boxes = await api(client, account, [["Mailbox/get", {"accountId": account.id}, "m"]])
    inbox = next(m["id"] for m in boxes[0][1]["list"] if m["role"] == "inbox")
    email = {"mailboxIds": {inbox: True}, "subject": "push latency", "from": [{"email": "a@b"}],
             "bodyValues": {"1": {"value": "hi"}},
             "textBody": [{"partId": "1", "type": "text/plain"}]}  # fmt: skip
    made = await api(client, account, [["Email/set", {"accountId": account.id,
                                                      "create": {"e": email}}, "e"]])  # fmt: skip
    account.email = made[0][1]["created"]["e"]["id"]


async def change(client: httpx.AsyncClient, account: Account) -> Change:
    """Toggle $seen on the account's Email."""
    account.seen = not account.seen
    update = {account.email: {"keywords/$seen": True if account.seen else None}}
    sent = time.perf_counter()
    answer = await api(client, account, [["Email/set", {"accountId": account.id,
                                                        "update": update}, "s"]])  # fmt: skip
    done = time.perf_counter()
    return Change(account, sent, int(answer[0][1]["newState"]), done - sent)


def delivered(stream: Stream, state: int) -> float | None:
    """When the stream was first told an Email state at least `state`."""
    return next((t for t, s in stream.events if s >= state), None)


async def settle(streams: list[Stream], changes: list[Change], timeout: float) -> None:
    """Wait until every stream has each account's last change, or for `timeout` seconds."""
    last = {c.account.id: c.state for c in changes}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(
            delivered(s, last[s.account.id]) is not None
            for s in streams
            if s.account.id in last and not s.lost
        ):
            return
        await asyncio.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def figures(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    ms = [v * 1000 for v in latencies]
    return {"p50 ms": round(percentile(ms, 50), 2), "p99 ms": round(percentile(ms, 99), 2),
            "max ms": round(max(ms), 2)}  # fmt: skip


def latencies(streams: list[Stream], changes: list[Change]) -> dict[str, Any]:
    """Per kind: the latencies of every (change, stream of its account) and the dropped."""
    out: dict[str, Any] = {}
    for kind in ("EventSource", "WebSocket"):
        values: list[float] = []
        dropped = superseded = 0
        for c in changes:
            for s in streams:
                if s.kind != kind or s.account is not c.account:
                    continue
                at = delivered(s, c.state)
                if at is None:
                    dropped += 1
                    continue
                values.append(at - c.sent)
                superseded += not any(state == c.state for _, state in s.events)
        out[kind] = {"deliveries": len(values), "dropped": dropped,
                     "superseded": superseded, **figures(values)}  # fmt: skip
    out["slowest changes"] = slowest(streams, changes)
    return out


def slowest(streams: list[Stream], changes: list[Change], n: int = 5) -> list[dict[str, Any]]:
    """The n changes with the latest delivery: their round trip, median and max per kind."""
    rows = []
    for i, c in enumerate(changes):
        row: dict[str, Any] = {"change": i, "Email/set ms": round(c.round_trip * 1000, 1)}
        for kind in ("EventSource", "WebSocket"):
            times = [delivered(s, c.state) for s in streams
                     if s.kind == kind and s.account is c.account]  # fmt: skip
            got = [(t - c.sent) * 1000 for t in times if t is not None]
            if got:
                row[f"{kind} median ms"] = round(statistics.median(got), 1)
                row[f"{kind} max ms"] = round(max(got), 1)
        rows.append(row)
    rows.sort(key=lambda row: -max([0.0, *(v for k, v in row.items() if k.endswith("max ms"))]))
    return rows[:n]


def total_rss(server: JmapdServer) -> float:
    return sum(server.rss_mb().values())


def sockets(server: JmapdServer) -> dict[int, int]:
    """Open sockets of each of the server's processes."""
    out = {}
    for pid in server.pids():
        with contextlib.suppress(OSError):
            fds = os.listdir(f"/proc/{pid}/fd")
            out[pid] = sum(
                os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
                for fd in fds
                if os.path.exists(f"/proc/{pid}/fd/{fd}")
            )
    return out


def server_log(server: JmapdServer) -> dict[str, Any]:
    """What the server logged that matters here: error lines and 4xx/5xx answers."""
    server.log.seek(0)
    text = server.log.read().decode(errors="replace")
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    for line in text.splitlines():
        status = re.search(r'"status": ?(\d{3})', line)
        if status:
            if int(status.group(1)) >= 400:
                statuses[status.group(1)] += 1
                problems.append(line[:300])
        elif re.search(r"error|exception|traceback|warning", line, re.IGNORECASE):
            problems.append(line[:300])
    return {"4xx/5xx answers": dict(statuses), "problem lines": len(problems),
            "first problem lines": problems[:10]}  # fmt: skip


async def measure(server: JmapdServer, accounts: list[Account], args: argparse.Namespace,
                  workers: int, say: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    port = server.port
    host = f"127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(prepare(client, server.url, a) for a in accounts))
        # Every worker's credential cache (likely: a new connection each, the kernel picks
        # the worker), so that opening streams costs no password hash.
        fresh = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_keepalive_connections=0))
        async with fresh:
            for _ in range(4 * workers):
                await asyncio.gather(*(fresh.get(server.url + "/jmap/session",
                                                 headers={"Authorization": basic(a.name)})
                                       for a in accounts))  # fmt: skip
        for _ in range(3):
            await asyncio.gather(*(change(client, a) for a in accounts))
        await asyncio.sleep(1)
        rss_before = total_rss(server)

        def spread(kind: type[Stream]) -> Callable[[], Stream]:
            count = iter(range(10**9))

            def make() -> Stream:
                account = accounts[next(count) % len(accounts)]
                if kind is EventSourceStream:
                    return EventSourceStream(account, host)
                return WebSocketStream(account)

            return make

        started = time.monotonic()
        eventsources, es_failed = await open_streams(
            spread(EventSourceStream), args.streams, args.open_concurrency, args.open_timeout,
            port,
        )  # fmt: skip
        es_seconds = time.monotonic() - started
        say(f"  {len(eventsources)} EventSource streams open in {es_seconds:.1f} s"
            + (f"; failed: {dict(es_failed)}" if es_failed else ""))  # fmt: skip
        await asyncio.sleep(1)
        rss_eventsources = total_rss(server)
        started = time.monotonic()
        websockets, ws_failed = await open_streams(
            spread(WebSocketStream), args.streams, args.open_concurrency, args.open_timeout, port
        )
        ws_seconds = time.monotonic() - started
        say(f"  {len(websockets)} WebSockets open in {ws_seconds:.1f} s"
            + (f"; failed: {dict(ws_failed)}" if ws_failed else ""))  # fmt: skip
        await asyncio.sleep(1)
        rss_websockets = total_rss(server)
        streams: list[Stream] = [*eventsources, *websockets]

        warm = list(await asyncio.gather(*(change(client, a) for a in accounts)))
        await settle(streams, warm, 30)
        deaf = Counter(s.kind for s in streams if delivered(s, {c.account.id: c.state
                       for c in warm}[s.account.id]) is None)  # fmt: skip
        if deaf:
            say(f"  no warm-up event on: {dict(deaf)}")

        cpu_before, idle_started = cpu_seconds(server.pids()), time.monotonic()
        await asyncio.sleep(args.idle)
        idle_cpu = sum(cpu_seconds(server.pids()).values()) - sum(cpu_before.values())
        idle_cpu_share = idle_cpu / (time.monotonic() - idle_started)
        per_process = sockets(server)

        changes: list[Change] = []
        ours = resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = cpu_seconds(server.pids())
        started = time.perf_counter()
        for k in range(args.changes):
            due = started + k * args.interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            changes.append(await change(client, accounts[k % len(accounts)]))
        await settle(streams, changes, args.settle)
        server_cpu = sum(cpu_seconds(server.pids()).values()) - sum(cpu_before.values())
        after = resource.getrusage(resource.RUSAGE_SELF)
        bench_cpu = after.ru_utime + after.ru_stime - ours.ru_utime - ours.ru_stime
        lost = Counter(s.kind for s in streams if s.lost)
        for s in streams:
            s.close()

    result = latencies(streams, changes)
    round_trips = figures([c.round_trip for c in changes])
    kb = 1024
    return {
        "accounts": len(accounts), "streams asked": args.streams,
        "EventSource open": len(eventsources), "EventSource open failures": dict(es_failed),
        "WebSocket open": len(websockets), "WebSocket open failures": dict(ws_failed),
        "open seconds": {"EventSource": round(es_seconds, 1), "WebSocket": round(ws_seconds, 1)},
        "no warm-up event": dict(deaf), "closed by the server": dict(lost),
        "changes": len(changes), "interval s": args.interval,
        "EventSource": result["EventSource"], "WebSocket": result["WebSocket"],
        "slowest changes": result["slowest changes"],
        "Email/set round trip": round_trips,
        "RSS MB": {"before": round(rss_before, 1), "with EventSources": round(rss_eventsources, 1),
                   "with WebSockets too": round(rss_websockets, 1)},
        "RSS KB per EventSource": round((rss_eventsources - rss_before) * kb
                                        / max(1, len(eventsources)), 1),
        "RSS KB per WebSocket": round((rss_websockets - rss_eventsources) * kb
                                      / max(1, len(websockets)), 1),
        "RSS KB per stream": round((rss_websockets - rss_before) * kb
                                   / max(1, len(eventsources) + len(websockets)), 1),
        "server CPU idle (share of a core)": round(idle_cpu_share, 3),
        "server CPU s during changes": round(server_cpu, 2),
        "bench CPU s during changes": round(bench_cpu, 2),
        "sockets per server process": list(per_process.values()),
    }  # fmt: skip


def configuration(args: argparse.Namespace, workers: int, say: Callable[[str], None]
                  ) -> dict[str, Any]:  # fmt: skip
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database(args.backend, args.server, "jmapd_bench_push") as database,
    ):
        data = Path(tmp) / "data"
        accounts = [Account(f"push{i}@localhost") for i in range(args.accounts)]
        with ThreadPoolExecutor(4) as pool:
            made = list(pool.map(lambda a: cli(data, database, "account", "add", a.name,
                                               "--password", PASSWORD), accounts))  # fmt: skip
        for out in made:
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
        env = (
            jmapd_env()
            | {
                "JMAPD_MAX_EVENT_SOURCES": str(args.streams + 100),
                "JMAPD_LOGIN_FAILURES_FREE": "1000000",
            }
            | dict(setting.split("=", 1) for setting in args.env)
        )
        flags = ["--data", str(data), "--workers", str(workers)]
        server = JmapdServer(flags + (["--database", database] if database else []), env)
        try:
            server.wait_ready()
            result = uvloop.run(measure(server, accounts, args, workers, say))
            result["server log"] = server_log(server)
        finally:
            server.stop()
    return {"backend": args.backend, "workers": workers, "env": args.env, **result}


def summary(r: dict[str, Any]) -> str:
    lines = [f"{r['backend']}, {r['workers']} worker(s): {r['EventSource open']} EventSource + "
             f"{r['WebSocket open']} WebSocket streams over {r['accounts']} account(s), "
             f"{r['changes']} changes every {r['interval s']} s"]  # fmt: skip
    for kind in ("EventSource", "WebSocket"):
        if r[f"{kind} open failures"]:
            lines.append(f"  {kind} streams that did not open: {r[f'{kind} open failures']}")
    for kind in ("EventSource", "WebSocket"):
        k = r[kind]
        lines.append(f"  {kind:<11} p50 {k.get('p50 ms', '-')} ms  p99 {k.get('p99 ms', '-')} ms"
                     f"  max {k.get('max ms', '-')} ms  ({k['deliveries']} deliveries, "
                     f"{k['dropped']} dropped, {k['superseded']} superseded)")  # fmt: skip
    rt = r["Email/set round trip"]
    lines.append(f"  Email/set   p50 {rt.get('p50 ms')} ms  p99 {rt.get('p99 ms')} ms")
    lines.append(f"  RSS {r['RSS MB']} MB: {r['RSS KB per EventSource']} KB per EventSource, "
                 f"{r['RSS KB per WebSocket']} KB per WebSocket, "
                 f"{r['RSS KB per stream']} KB per stream")  # fmt: skip
    lines.append(f"  server CPU idle {r['server CPU idle (share of a core)']:.1%} of a core; "
                 f"sockets per process {r['sockets per server process']}")  # fmt: skip
    if r["slowest changes"]:
        lines.append(f"  slowest change: {r['slowest changes'][0]}")
    log = r["server log"]
    lines.append(
        f"  server log: {log['problem lines']} problem lines, 4xx/5xx "
        f"{log['4xx/5xx answers']}; closed by the server {r['closed by the server']}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000, help="of each kind")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--idle", type=float, default=10)
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--open-concurrency", type=int, default=50)
    parser.add_argument("--open-timeout", type=float, default=15)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="JMAPD_NAME=VALUE",
        help="a setting for the server (e.g. JMAPD_CREDENTIAL_CHECK_INTERVAL=60)",
    )
    parser.add_argument("--json")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:  # the server (our child) inherits it
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = []
    for workers in args.workers:
        print(f"{args.backend}, {workers} worker(s):", flush=True)
        results.append(configuration(args, workers, lambda line: print(line, flush=True)))
        print(summary(results[-1]), flush=True)
    out = {"cpu": cpu_model(), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
           "results": results}  # fmt: skip
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
