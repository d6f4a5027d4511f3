"""LMTP ingest (issue 12): `--messages` messages of `--size` octets delivered to one account
over `--connections` LMTP connections at once, each message to one recipient; reports
messages per second (from the first MAIL to the last 250), the p50/p99 of the time from the
end of DATA to the 250, and then, over 50 single messages, the p50/p99 of the time from a 250
to an EventSource's event and to Email/query finding the message.

    .venv/bin/python -m bench.lmtp [--messages 1000] [--size 10000 100000] [--connections 4]
        [--workers 1] [--backend sqlite|postgresql] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import socket
import statistics
import threading
import time
from typing import Any

import httpx

from bench.fill import jmapd_env
from bench.machine import cpu_model, free_port
from bench.server import JmapdServer, one_account, server_arguments

USER, PASSWORD = "lmtp@localhost", "lmtp-password"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


def message(n: int, size: int) -> bytes:
    head = (f"From: Sender <sender@remote.example>\r\nTo: {USER}\r\nSubject: bench {n}\r\n"
            f"Message-ID: <bench-{n}@remote.example>\r\n"
            "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\n").encode()  # fmt: skip
    line = b"The quick brown fox jumps over the lazy dog, again and again. 0123456789\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


class Connection:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.reply()
        self.command(b"LHLO bench")

    def reply(self) -> int:
        while True:
            line = self.file.readline()
            if line[3:4] != b"-":
                return int(line[:3])

    def command(self, line: bytes) -> int:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def deliver(self, raw: bytes) -> float:
        """One message; the seconds from the end of DATA to its 250."""
        assert self.command(b"MAIL FROM:<sender@remote.example>") == 250
        assert self.command(f"RCPT TO:<{USER}>".encode()) == 250
        assert self.command(b"DATA") == 354
        self.sock.sendall(raw + b".\r\n")
        sent = time.perf_counter()
        code = self.reply()
        if code != 250:
            raise RuntimeError(f"DATA answered {code}")
        return time.perf_counter() - sent


def run(messages: int, size: int, connections: int, workers: int, backend: str,
        pg_server: str) -> dict[str, Any]:  # fmt: skip
    with one_account(backend, pg_server, "jmapd_bench_lmtp", USER, PASSWORD) as (data, database):
        port = free_port()
        args = ["--data", str(data), "--lmtp", f"127.0.0.1:{port}"]
        args += ["--database", database] if database else []
        server = JmapdServer(args, jmapd_env() | {"JMAPD_WORKERS": str(workers)})
        try:
            server.wait_ready()
            bodies = [message(i, size) for i in range(messages)]
            waits: list[float] = []
            lock = threading.Lock()
            todo = iter(range(messages))

            def worker() -> None:
                conn = Connection(port)
                while True:
                    with lock:
                        i = next(todo, None)
                    if i is None:
                        return
                    wait = conn.deliver(bodies[i])
                    with lock:
                        waits.append(wait)

            started = time.perf_counter()
            threads = [threading.Thread(target=worker) for _ in range(connections)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            latencies = _latencies(server.url, port, size)
            waits.sort()
            return {
                "backend": backend, "workers": workers, "connections": connections,
                "size": size, "messages": messages,
                "msg/s": round(messages / elapsed, 1),
                "250 after DATA p50 ms": round(statistics.median(waits) * 1000, 1),
                "250 after DATA p99 ms": round(waits[int(len(waits) * 0.99) - 1] * 1000, 1),
                **latencies,
            }  # fmt: skip
        finally:
            server.stop()


def _latencies(url: str, port: int, size: int, probes: int = 50) -> dict[str, float]:
    """`probes` more messages, one at a time: the p50/p99 of the time from each one's 250 until
    an EventSource (types=Email) announces it, and until Email/query finds it."""
    client = httpx.Client(base_url=url, auth=(USER, PASSWORD), timeout=30)
    session = client.get("/jmap/session").json()
    account = session["primaryAccounts"][USING[1]]
    events: queue.Queue[float] = queue.Queue()
    source = session["eventSourceUrl"].format(types="Email", closeafter="no", ping="0")

    def listen() -> None:
        # the server stops at the end
        with (
            contextlib.suppress(httpx.HTTPError),
            client.stream("GET", source, timeout=None) as stream,
        ):
            for line in stream.iter_lines():
                if line.startswith("event: state"):
                    events.put(time.perf_counter())

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(0.5)
    pushed, found = [], []
    conn = Connection(port)
    for n in range(probes):
        while not events.empty():
            events.get()
        subject = f"needle-{n}"
        conn.deliver(message(10**9 + n, size).replace(f"bench {10**9 + n}".encode(),
                                                      subject.encode()))  # fmt: skip
        done = time.perf_counter()
        pushed.append(events.get(timeout=10) - done)
        query = {"accountId": account, "filter": {"subject": subject}}
        while not client.post("/jmap/api", json={"using": USING, "methodCalls": [
                ["Email/query", query, "q"]]}).json()["methodResponses"][0][1]["ids"]:  # fmt: skip
            pass
        found.append(time.perf_counter() - done)
    return {
        "pushed after 250 p50 ms": _ms(statistics.median(pushed)),
        "pushed after 250 p99 ms": _ms(sorted(pushed)[int(len(pushed) * 0.99) - 1]),
        "in Email/query after 250 p50 ms": _ms(statistics.median(found)),
        "in Email/query after 250 p99 ms": _ms(sorted(found)[int(len(found) * 0.99) - 1]),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--connections", type=int, default=4)
    server_arguments(parser)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}")
    results = []
    for workers in args.workers:
        for size in args.size:
            result = run(args.messages, size, args.connections, workers, args.backend,
                         args.server)  # fmt: skip
            print(result, flush=True)
            results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
