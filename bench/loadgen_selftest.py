#!/usr/bin/env python3
"""Self-test for bench/loadgen.py against tiny stdlib servers (framing edge cases).

Run: python bench/loadgen_selftest.py   (exits non-zero on failure; ~5 s)
Deliberately not named test_*.py so the project's pytest run does not collect it.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadgen

RESPONSES = {
    "length": [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"],
    "chunked": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: t\r\n\r\n"
    ],
    "chunked-split": [
        b"HTTP/1.1 200 OK\r\nTransfer-",
        b"Encoding: chunked\r\n\r\n",
        b"a\r\n01234",
        b"56789\r",
        b"\n0\r\n",
        b"\r\n",
    ],
    "close": [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", None],
    "eof-body": [b"HTTP/1.0 200 OK\r\n\r\nbody until close", None],
    "500": [b"HTTP/1.1 500 ERR\r\nContent-Length: 0\r\n\r\n"],
    "interim-100": [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"],
    "hang": ["hang"],
    "garbage": [b"garbage\r\n\r\n"],
}

# kind -> (expect successes, expect errors)
EXPECT = {
    "length": (True, False),
    "chunked": (True, False),
    "chunked-split": (True, False),
    "close": (True, False),
    "eof-body": (True, False),
    "500": (False, True),
    "interim-100": (True, False),
    "hang": (False, True),
    "garbage": (False, True),
}


def make_handler(kind: str):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                cl = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        cl = int(line.split(b":", 1)[1])
                if cl:
                    await reader.readexactly(cl)
                for part in RESPONSES[kind]:
                    if part is None:
                        await writer.drain()
                        return
                    if part == "hang":
                        await asyncio.sleep(3600)
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return handler


async def main() -> int:
    failures = 0
    for kind, (want_ok, want_err) in EXPECT.items():
        server = await asyncio.start_server(make_handler(kind), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r = await loadgen.run(
            f"http://127.0.0.1:{port}/x",
            body=b"abc",
            concurrency=2,
            duration=0.3,
            warmup=0.1,
            timeout=0.5,
        )
        server.close()
        ok = (r.rps > 0) == want_ok and (r.errors > 0) == want_err
        failures += not ok
        tag = "ok  " if ok else "FAIL"
        print(f"{tag} {kind:14s} {r.summary()} statuses={r.status_counts} {r.error_samples[:1]}")
    print(f"{len(EXPECT) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
