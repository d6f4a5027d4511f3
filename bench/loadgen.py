#!/usr/bin/env python3
"""Minimal HTTP/1.1 keep-alive load generator (stdlib asyncio only).

Library use::

    from bench.loadgen import run
    res = asyncio.run(run("http://127.0.0.1:8000/api", body=b"{}", concurrency=32))
    print(res.rps, res.p50_ms, res.p99_ms)

CLI use::

    python bench/loadgen.py http://127.0.0.1:8000/api --method POST \
        --data '{"using":[],"methodCalls":[]}' \
        --header 'Authorization: Basic dXNlcjpwYXNz' -c 32 -d 5

Each of ``concurrency`` workers keeps one persistent connection, sends a
request, reads the whole response (Content-Length, chunked, or read-to-close),
and repeats (closed loop, no pipelining). Requests completing during the
warm-up period are discarded; only requests that *complete* inside the
measurement window ``[warmup, warmup + duration)`` are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

__all__ = ["Result", "main", "run"]

_CRLF = b"\r\n"
_HDR_END = b"\r\n\r\n"
_MAX_HEADER = 64 * 1024


@dataclass
class Result:
    url: str
    method: str
    concurrency: int
    duration: float
    requests: int  # completed requests (any status) inside the measurement window
    errors: int  # non-2xx responses + connection/protocol errors inside the window
    rps: float  # successful (2xx) requests per second
    p50_ms: float
    p99_ms: float
    status_counts: dict[int, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.method} {self.url} c={self.concurrency} d={self.duration:g}s: "
            f"requests={self.requests} errors={self.errors} rps={self.rps:.1f} "
            f"p50={self.p50_ms:.3f}ms p99={self.p99_ms:.3f}ms"
        )

    def to_dict(self) -> dict:
        return asdict(self)


class _ProtocolError(Exception):
    pass


def _percentile(sorted_vals: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, round(pct / 100.0 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[k]


# Body framing modes of the response being parsed.
_M_HEAD, _M_LENGTH, _M_CHUNK_SIZE, _M_CHUNK_DATA, _M_TRAILER, _M_CLOSE = range(6)


class _Conn(asyncio.Protocol):
    """One HTTP/1.1 client connection; one outstanding request at a time.

    A hand-rolled Protocol rather than StreamReader: with small responses the
    whole response usually arrives in a single data_received() call and is
    handled with one future per request, which roughly halves client CPU per
    request compared with readuntil()/readexactly() on asyncio streams.
    """

    __slots__ = (
        "buf",
        "closed",
        "head_only",
        "keep_alive",
        "left",
        "loop",
        "mode",
        "status",
        "transport",
        "waiter",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, head_only: bool) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.head_only = head_only
        self.mode = _M_HEAD
        self.left = 0
        self.status = 0
        self.keep_alive = True
        self.closed = False

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            # Unsolicited bytes (no request outstanding): protocol violation.
            self._fail(_ProtocolError("unexpected data from server"))
            return
        self.buf += data
        try:
            self._parse()
        except (ValueError, _ProtocolError) as e:
            self._fail(e if isinstance(e, _ProtocolError) else _ProtocolError(repr(e)))

    def eof_received(self):
        return False  # let the transport close itself

    def connection_lost(self, exc) -> None:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            if self.mode == _M_CLOSE:
                self.keep_alive = False
                w.set_result(self.status)
            else:
                w.set_exception(ConnectionError(f"connection lost mid-response: {exc!r}"))

    # -- request/response -------------------------------------------------
    def request(self, data: bytes) -> asyncio.Future:
        self.mode = _M_HEAD
        self.keep_alive = True
        self.buf.clear()
        self.waiter = w = self.loop.create_future()
        if self.closed:
            w.set_exception(ConnectionError("connection closed"))
        else:
            self.transport.write(data)
        return w

    def _fail(self, exc: Exception) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    def _done(self) -> None:
        self.waiter.set_result(self.status)

    def _parse_head(self, head: bytes) -> None:
        nl = head.find(_CRLF)
        status_line = head if nl < 0 else head[:nl]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise _ProtocolError(f"bad status line {status_line[:80]!r}")
        status = int(status_line[9:12])
        keep_alive = status_line[7:8] == b"1"  # HTTP/1.1 keep-alive by default, 1.0 not
        length = -1
        chunked = False
        if nl >= 0:
            for line in head[nl + 2 :].split(_CRLF):
                name, sep, value = line.partition(b":")
                if not sep:
                    continue
                lname = name.strip().lower()
                if lname == b"content-length":
                    length = int(value)
                elif lname == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif lname == b"connection":
                    v = value.strip().lower()
                    if v == b"close":
                        keep_alive = False
                    elif v == b"keep-alive":
                        keep_alive = True
        self.status = status
        self.keep_alive = keep_alive
        if self.head_only or status in (204, 304):
            self.mode = -1  # complete, no body
        elif chunked:
            self.mode = _M_CHUNK_SIZE
        elif length >= 0:
            self.mode = _M_LENGTH
            self.left = length
        else:
            self.mode = _M_CLOSE

    def _parse(self) -> None:
        buf = self.buf
        while True:
            mode = self.mode
            if mode == _M_HEAD:
                i = buf.find(_HDR_END)
                if i < 0:
                    if len(buf) > _MAX_HEADER:
                        raise _ProtocolError("response header too large")
                    return
                head = bytes(buf[:i])
                del buf[: i + 4]
                self._parse_head(head)
                if 100 <= self.status < 200 and self.status != 101:
                    self.mode = _M_HEAD  # interim response: wait for the final one
                    continue
                if self.mode == -1:
                    self._done()
                    return
            elif mode == _M_LENGTH:
                n = len(buf)
                if n >= self.left:
                    del buf[: self.left]
                    self.left = 0
                    self._done()
                    return
                self.left -= n
                buf.clear()
                return
            elif mode == _M_CHUNK_SIZE:
                i = buf.find(_CRLF)
                if i < 0:
                    return
                size = int(bytes(buf[:i]).split(b";", 1)[0].strip(), 16)
                del buf[: i + 2]
                if size == 0:
                    self.mode = _M_TRAILER
                else:
                    self.mode = _M_CHUNK_DATA
                    self.left = size + 2  # data + CRLF
            elif mode == _M_CHUNK_DATA:
                n = len(buf)
                if n >= self.left:
                    del buf[: self.left]
                    self.mode = _M_CHUNK_SIZE
                    continue
                self.left -= n
                buf.clear()
                return
            elif mode == _M_TRAILER:
                i = buf.find(_CRLF)
                if i < 0:
                    return
                del buf[: i + 2]
                if i == 0:  # empty line ends the trailer section
                    self._done()
                    return
            elif mode == _M_CLOSE:
                buf.clear()  # body ends when the server closes
                return
            else:
                return


async def run(
    url: str,
    *,
    method: str = "POST",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    concurrency: int,
    duration: float = 5.0,
    warmup: float = 1.0,
    timeout: float = 10.0,
    cycles: list[list[bytes]] | None = None,
) -> Result:
    """Drive ``url`` with ``concurrency`` closed-loop keep-alive connections.

    With ``cycles``, worker ``i`` sends the bodies of ``cycles[i % len(cycles)]`` in turn
    instead of ``body`` (e.g. a keyword set and cleared again, on emails of its own).

    ``requests`` counts every request that completed (or failed) inside the
    measurement window; ``errors`` the non-2xx and connection/protocol
    failures among them; ``rps`` is 2xx responses per second; p50/p99 are
    latencies of the 2xx responses. A request still outstanding ``timeout``
    seconds after the window closed is cancelled and counted as an error.
    Runs on whatever event loop is current (uvloop makes the client cheaper).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme {parts.scheme!r}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    ssl_ctx = None
    if parts.scheme == "https":
        ssl_ctx = ssl.create_default_context()
        ssl_ctx.check_hostname = False
        ssl_ctx.verify_mode = ssl.CERT_NONE
        ssl_ctx.set_alpn_protocols(["http/1.1"])

    method = method.upper()
    hdrs = {k.lower(): (k, v) for k, v in (headers or {}).items()}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in hdrs:
        default_port = 443 if parts.scheme == "https" else 80
        lines.append(f"Host: {host}" + (f":{port}" if port != default_port else ""))
    for k, v in hdrs.values():
        lines.append(f"{k}: {v}")

    def framed(payload: bytes) -> bytes:
        length = []
        if "content-length" not in hdrs and (payload or method in ("POST", "PUT", "PATCH")):
            length = [f"Content-Length: {len(payload)}"]
        return ("\r\n".join(lines + length) + "\r\n\r\n").encode("latin-1") + payload

    requests = [[framed(b) for b in cycle] for cycle in cycles] if cycles else [[framed(body)]]
    head_only = method == "HEAD"

    latencies: list[float] = []  # 2xx requests completed in the window, seconds
    status_counts: dict[int, int] = {}
    counters = {"requests": 0, "errors": 0}
    error_samples: list[str] = []
    inflight_since: list[float] = [0.0] * concurrency  # 0.0 = idle

    loop = asyncio.get_running_loop()
    perf = time.perf_counter
    win_start = perf() + warmup
    win_end = win_start + duration

    def record_error(msg: str) -> None:
        if win_start <= perf() < win_end:
            counters["requests"] += 1
            counters["errors"] += 1
            if len(error_samples) < 5:
                error_samples.append(msg)

    async def worker(idx: int) -> None:
        conn: _Conn | None = None
        append = latencies.append
        cycle, sent = requests[idx % len(requests)], 0
        try:
            while True:
                if conn is None or conn.closed:
                    if conn is not None and conn.transport is not None:
                        conn.transport.close()
                    conn = None
                    if perf() >= win_end:
                        return
                    try:
                        _, conn = await asyncio.wait_for(
                            loop.create_connection(
                                lambda: _Conn(loop, head_only), host, port, ssl=ssl_ctx
                            ),
                            timeout,
                        )
                    except (TimeoutError, OSError) as e:
                        record_error(f"connect: {e!r}")
                        await asyncio.sleep(0.01)
                        continue
                start = perf()
                if start >= win_end:
                    return
                inflight_since[idx] = start
                request = cycle[sent % len(cycle)]
                sent += 1
                try:
                    status = await conn.request(request)
                except (OSError, _ProtocolError) as e:  # ConnectionError is an OSError
                    inflight_since[idx] = 0.0
                    record_error(f"request: {e!r}")
                    conn.closed = True
                    continue
                inflight_since[idx] = 0.0
                end = perf()
                if win_start <= end < win_end:
                    counters["requests"] += 1
                    status_counts[status] = status_counts.get(status, 0) + 1
                    if 200 <= status < 300:
                        append(end - start)
                    else:
                        counters["errors"] += 1
                if not conn.keep_alive:
                    conn.closed = True
        finally:
            if conn is not None and conn.transport is not None:
                conn.transport.close()

    tasks = [asyncio.ensure_future(worker(i)) for i in range(concurrency)]
    try:
        await asyncio.wait(tasks, timeout=max(0.0, win_end - perf()) + timeout)
    finally:
        for i, t in enumerate(tasks):
            if not t.done():
                t.cancel()
                started = inflight_since[i]
                if started and started < win_end:  # outstanding during the window
                    counters["requests"] += 1
                    counters["errors"] += 1
                    if len(error_samples) < 5:
                        error_samples.append(f"timeout: no response after {timeout}s")
        await asyncio.gather(*tasks, return_exceptions=True)

    latencies.sort()
    ok = len(latencies)
    return Result(
        url=url,
        method=method,
        concurrency=concurrency,
        duration=duration,
        requests=counters["requests"],
        errors=counters["errors"],
        rps=ok / duration if duration > 0 else float("nan"),
        p50_ms=_percentile(latencies, 50) * 1000.0,
        p99_ms=_percentile(latencies, 99) * 1000.0,
        status_counts=status_counts,
        error_samples=error_samples,
    )


def _run_with_loop(kind: str, coro):
    if kind in ("auto", "uvloop"):
        try:
            import uvloop  # optional accelerator, not a dependency
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.run(coro) if hasattr(uvloop, "run") else _run_uvloop_compat(uvloop, coro)
    return asyncio.run(coro)


def _run_uvloop_compat(uvloop, coro):
    uvloop.install()
    return asyncio.run(coro)


def _parse_header(h: str) -> tuple[str, str]:
    name, sep, value = h.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"header must be 'Name: value', got {h!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="HTTP/1.1 keep-alive closed-loop load generator")
    p.add_argument("url")
    p.add_argument("-m", "--method", default="POST")
    p.add_argument("--data", default="", help="request body (use @file to read from a file)")
    p.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        type=_parse_header,
        help="'Name: value', repeatable",
    )
    p.add_argument("-c", "--concurrency", type=int, default=32)
    p.add_argument("-d", "--duration", type=float, default=5.0)
    p.add_argument("-w", "--warmup", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="client event loop; auto = uvloop if importable (optional), else asyncio",
    )
    a = p.parse_args(argv)

    if a.data.startswith("@"):
        with open(a.data[1:], "rb") as f:
            body = f.read()
    else:
        body = a.data.encode()
    res = _run_with_loop(
        a.loop,
        run(
            a.url,
            method=a.method,
            body=body,
            headers=dict(a.header),
            concurrency=a.concurrency,
            duration=a.duration,
            warmup=a.warmup,
            timeout=a.timeout,
        ),
    )
    if a.json:
        print(json.dumps(res.to_dict()))
    else:
        line = res.summary()
        if res.errors:
            line += f" statuses={res.status_counts} first_errors={res.error_samples[:2]}"
        print(line)
    return 0 if res.requests and res.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
