"""What operators see: a structured access log (one JSON line per request: method names,
account, duration, status; never a body, a query string or a credential) and Prometheus
metrics (prometheus_client, the field's library), served on a listener of their own.

With several worker processes every worker counts into files of a shared directory
(prometheus_client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR set by `jmapd serve`), and
the serving process answers /metrics with the sum.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger("jmapd.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                Awaitable[None]]  # fmt: skip

ROUTES = ("/.well-known/jmap", "/jmap/session", "/jmap/api", "/jmap/upload", "/jmap/download",
          "/jmap/eventsource", "/jmap/ws", "/jmap/access-token")  # fmt: skip
REQUESTS = Counter("jmapd_http_requests", "HTTP requests by route and status", ["route", "status"])
LATENCY = Histogram(
    "jmapd_http_request_duration_seconds", "HTTP request durations by route", ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
METHOD_CALLS = Counter(
    "jmapd_method_calls", "JMAP method calls by method and outcome (ok or the error type)",
    ["method", "outcome"],
)  # fmt: skip
FAILED_LOGINS = Counter("jmapd_failed_logins", "Failed logins (wrong credentials)")
THROTTLED_LOGINS = Counter("jmapd_throttled_logins", "Logins refused with 429")
EVENT_STREAMS = Gauge("jmapd_event_streams", "Open event source streams",
                      multiprocess_mode="livesum")  # fmt: skip
EMAILS_STORED = Counter("jmapd_emails_stored", "Messages stored (import, create, copy)")


def route_of(path: str) -> str:
    """A bounded label: the route a path belongs to."""
    return next((r for r in ROUTES if path == r or path.startswith(r + "/")), "other")


def method_label(name: str, known: Callable[[str], bool]) -> str:
    return name if known(name) else "unknown"


class AccessLog:
    """ASGI middleware: times each HTTP request, counts it, and logs one line when its
    response is done. Handlers add what they know to scope["jmapd"] (user, calls)."""

    def __init__(self, app: ASGI, client: Callable[[Scope], str], enabled: bool) -> None:
        self.app = app
        self.client = client
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        notes: dict[str, Any] = {}
        scope["jmapd"] = notes
        seen = {"status": 0, "bytes": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope["path"])
            REQUESTS.labels(route, str(seen["status"] or 500)).inc()
            LATENCY.labels(route).observe(elapsed)
            if self.enabled:
                self._log(scope, notes, seen, elapsed)

    def _log(self, scope: Scope, notes: dict[str, Any], seen: dict[str, int],
             elapsed: float) -> None:  # fmt: skip
        line = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "client": self.client(scope),
            "method": scope["method"],
            "path": scope["path"][:200],  # never the query string (tokens may live there)
            "status": seen["status"] or 500,
            "ms": round(elapsed * 1000, 2),
            "bytes": seen["bytes"],
            **notes,
        }
        log.info("%s", orjson.dumps(line).decode())


def serve_metrics(address: str, port: int) -> None:
    """Answer /metrics on its own listener, from a thread of the serving process, with the
    sum over every worker (whose files are in PROMETHEUS_MULTIPROC_DIR, which must be set
    before prometheus_client is first imported: `jmapd serve` does so)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, address, registry=registry)
