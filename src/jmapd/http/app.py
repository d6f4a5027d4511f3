"""The ASGI app: routes, request-level errors as problem JSON, CORS and compression."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Any

import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..config import Config
from ..protocol.errors import RequestError
from ..protocol.registry import REGISTRY, Capability, Context, Registry, User
from ..protocol.request import needs_store, parse_request, run
from ..protocol.values import utc_date
from ..push.bus import Bus, catch_up, poll
from ..push.eventsource import parse_params, stream
from ..push.local import LocalFanout
from ..push.webpush import VAPID, WebPush
from ..push.webpush import expire as expire_subscriptions
from ..push.websocket import POLICY_VIOLATION
from ..push.websocket import Connection as WebSocketConnection
from ..push.websocket import serve as serve_websocket
from ..smtp.intake import serve_mail
from ..smtp.outbound import Outbound
from ..store import open_blobs, open_store
from ..store.base import Busy
from ..store.blobs import collect_orphans, sweep
from ..types import load as load_types
from .auth import ACCESS_TOKEN, Authenticator
from .blobs import download, upload
from .observe import EMAILS_STORED, EVENT_STREAMS, METHOD_CALLS, AccessLog
from .session import (
    base_url,
    client_address,
    session_object,
    session_state,
    trusted_networks,
)

log = logging.getLogger("jmapd.http")
DECIMAL = re.compile(r"[0-9]{1,30}")  # ASCII digits only: str.isdigit() takes "²"


class BodiesOnlyGZip(GZipMiddleware):
    """gzip for JSON answers, not for downloads: a blob is sent as its exact octets (Range
    and Content-Length speak of them), whether it comes from a file or from memory."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/jmap/download/"):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem(error: RequestError) -> Response:
    return Response(
        orjson.dumps(error.problem()),
        status_code=error.status,
        media_type="application/problem+json",
        headers=error.headers,
    )


class Server:
    """Everything a request needs, made once per worker process."""

    def __init__(self, config: Config, registry: Registry = REGISTRY) -> None:
        self.config = config
        self.registry = registry
        load_types(config.extra_modules)
        self.store = open_store(config)
        self.blobs = open_blobs(config, self.store)
        self.trusted_proxies = trusted_networks(config.trusted_proxies)
        self.auth = Authenticator(self.store, config, lambda conn: client_address(self, conn))
        self.bus = Bus()
        self.fanout: LocalFanout | None = None  # SQLite: the other workers (push/local.py)
        # The threads that run method calls: a few, not anyio's 40. The engine is Python and
        # holds the GIL; more threads than cores only queue behind each other (and add
        # switching), while a couple more than one let a thread wait on the database or the
        # disk while another computes.
        self.engine = anyio.CapacityLimiter(config.engine_threads)
        self._active: dict[tuple[str, str], int] = defaultdict(int)
        self.webpush = WebPush(config, self.store, self.bus, self.announce_from_thread)
        self.outbound = Outbound(self)
        # RFC 9749 §3: the key push services check the server's pushes against.
        key = {"applicationServerKey": self.webpush.application_server_key}
        registry.capability(Capability(VAPID, lambda config: key, lambda access: None))

    def check_slot(self, user: User, kind: str, limit: int, name: str) -> None:
        """Over the limit of a user's concurrent requests of one kind is a limit error."""
        if self._active[(user.account_id, kind)] >= limit:
            raise RequestError(
                "limit", 429, f"more than {limit} concurrent {kind} for this user", limit=name
            )

    @contextlib.contextmanager
    def slot(self, user: User, kind: str, limit: int, name: str) -> Iterator[None]:
        """Count a user's concurrent requests of one kind; over the limit is a limit error."""
        self.check_slot(user, kind, limit, name)
        key = (user.account_id, kind)
        self._active[key] += 1
        try:
            yield
        finally:
            self._active[key] -= 1

    def load_access(self, user: User) -> User:
        """Re-check the user's credential and read the accounts they may use (grants change)."""
        self.auth.check(user)
        user.access = {a.account_id: a for a in self.store.access(user.account_id)}
        user.session_state = session_state(self, user)
        return user

    def stream_still_valid(self, user: User) -> bool:
        """For an open EventSource or WebSocket (in a worker thread): is its credential still
        good? A store that cannot be reached keeps the stream, to be asked again later."""
        try:
            self.auth.check(user, self.config.credential_check_interval)
        except RequestError:
            return False
        except Exception:
            log.exception("checking an open stream's credential failed")
        return True

    def announce_from_thread(self, changed: dict[str, dict[str, int]]) -> None:
        if self.webpush.loop is not None:
            self.webpush.loop.call_soon_threadsafe(self.announce, changed)

    def announce(self, changed: dict[str, dict[str, int]]) -> None:
        """Committed changes: to this worker's listeners, and to the other workers'."""
        self.bus.publish(changed)
        if self.fanout is not None:
            self.fanout.send(changed)

    async def process(
        self, user: User, body: bytes, content_type: str, notes: dict[str, Any]
    ) -> dict[str, Any]:
        """One JMAP request (RFC 8620 §3.3) from its body: parsed, run on the engine's
        threads (or at once when no call needs the store), its changes announced."""
        parsed = parse_request(body, content_type, self.registry,
                               self.config.max_calls_in_request)  # fmt: skip
        notes["calls"] = [name for name, _, _ in parsed.calls]  # for the access log
        if needs_store(parsed, self.registry):
            ctx = self.context(user, parsed.using)

            def process() -> dict[str, Any]:
                self.load_access(user)
                return run(ctx, parsed, self.observe_call)

            result = await anyio.to_thread.run_sync(process, limiter=self.engine)
            if ctx.changed:
                self.announce(ctx.changed)
        else:
            result = run(self.context(user, parsed.using), parsed, self.observe_call)
        result["sessionState"] = user.session_state
        return result

    def observe_call(self, name: str, responses: list[tuple[str, dict[str, Any]]]) -> None:
        """Count a method call by its outcome, and the messages it stored."""
        known = name in self.registry.methods
        outcome = next((r["type"] for n, r in responses if n == "error"), "ok")
        METHOD_CALLS.labels(name if known else "unknown", str(outcome)[:40]).inc()
        if name in ("Email/import", "Email/set", "Email/copy"):
            for response_name, response in responses:
                if response_name == name and response.get("created"):
                    EMAILS_STORED.inc(len(response["created"]))

    def context(self, user: User, using: frozenset[str]) -> Context:
        return Context(self.config, self.store, self.blobs, user, using, self.registry,
                       services={"webpush": self.webpush,
                                 "outbound": self.outbound})  # fmt: skip

    async def authenticate(
        self, conn: HTTPConnection, fresh: bool = True, access_token: bool = False
    ) -> User:
        """The request's user; with `fresh`, their credential re-checked and access reloaded
        (the API does that in its worker thread instead); with `access_token`, a browser
        access token in the query string will do (http/auth.py)."""
        user = await self.auth(conn, access_token)
        conn.scope.setdefault("jmapd", {})["user"] = user.name  # for the access log
        if fresh or not user.access:
            await anyio.to_thread.run_sync(self.load_access, user)
        return user


async def read_body(request: Request, limit: int, name: str, status: int, timeout: float) -> bytes:
    """The body, at most `limit` octets, arriving within `timeout` seconds (a client that
    sends slowly holds a request slot for no longer)."""
    too_large = RequestError("limit", status, f"the body is larger than {limit} octets", limit=name)
    declared = request.headers.get("content-length", "")
    if DECIMAL.fullmatch(declared) and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(
            "about:blank", 408, f"the body did not arrive within {timeout:g} s",
            headers={"Connection": "close"}, title="Request Timeout",
        ) from None  # fmt: skip
    return b"".join(chunks)


def routes(server: Server) -> list[BaseRoute]:
    config = server.config

    async def well_known(request: Request) -> Response:
        # §2.2; to the public URL when one is configured (behind a TLS proxy the request's
        # own scheme would downgrade the client to http).
        return RedirectResponse(base_url(server, request) + "/jmap/session", status_code=307)

    async def session(request: Request) -> Response:
        user = await server.authenticate(request)
        return JSONResponse(session_object(server, user, request))

    async def api(request: Request) -> Response:
        user = await server.authenticate(request, fresh=False)
        # The slot is taken before the body is read: a slow body counts as a request.
        with server.slot(user, "requests", config.max_concurrent_requests, "maxConcurrentRequests"):
            body = await read_body(request, config.max_size_request, "maxSizeRequest", 400,
                                   config.request_body_timeout)  # fmt: skip
            notes = request.scope.setdefault("jmapd", {})
            result = await server.process(user, body, request.headers.get("content-type", ""),
                                          notes)  # fmt: skip
        return JSONResponse(result)

    async def websocket(socket: WebSocket) -> None:
        """RFC 8887; a refused handshake (credentials, no "jmap" subprotocol) is a close
        before accept, which the server answers 403."""
        try:
            user = await server.authenticate(socket, access_token=True)
        except RequestError:
            await socket.close(POLICY_VIOLATION)
            return
        if "jmap" not in socket.scope.get("subprotocols", []):
            await socket.close(POLICY_VIOLATION)
            return
        await socket.accept(subprotocol="jmap")

        async def answer(body: bytes) -> dict[str, Any]:
            with server.slot(user, "requests", config.max_concurrent_requests,
                             "maxConcurrentRequests"):  # fmt: skip
                return await server.process(user, body, "application/json", {})

        async def still_valid() -> bool:
            return await anyio.to_thread.run_sync(server.stream_still_valid, user)

        async def states(account_ids: list[str]) -> dict[str, dict[str, int]]:
            return await anyio.to_thread.run_sync(server.store.states, account_ids)

        await serve_websocket(WebSocketConnection(
            socket, list(user.access), answer, states, still_valid, server.bus,
            config.max_size_request, config.credential_check_interval,
            # past maxConcurrentRequests a request is refused (limit), as over HTTP; past
            # twice that the socket is not read until answers have gone out
            2 * config.max_concurrent_requests,
        ))  # fmt: skip

    async def upload_route(request: Request) -> Response:
        user = await server.authenticate(request)
        with server.slot(user, "uploads", config.max_concurrent_upload, "maxConcurrentUpload"):
            data = await read_body(request, config.max_size_upload, "maxSizeUpload", 413,
                                   config.request_body_timeout)  # fmt: skip
            return JSONResponse(await upload(server, user, request, data), status_code=201)

    async def download_route(request: Request) -> Response:
        user = await server.authenticate(request, access_token=True)
        return await download(server, user, request)

    async def access_token(request: Request) -> Response:
        """A browser access token for the request's credential (never for another token)."""
        user = await server.authenticate(request)
        token, expires = server.auth.issue_access_token(user, config.access_token_ttl)
        return JSONResponse({"accessToken": token, "expires": utc_date(expires),
                             "parameter": ACCESS_TOKEN},
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    async def eventsource(request: Request) -> Response:
        user = await server.authenticate(request, access_token=True)
        wanted, close_after, ping = parse_params(request.query_params)

        server.check_slot(user, "event sources", config.max_event_sources, "event sources")
        events = stream(
            server.bus, list(user.access), server.store.states, wanted, close_after, ping,
            partial(server.stream_still_valid, user), config.credential_check_interval,
            request.headers.get("last-event-id"),
        )  # fmt: skip

        async def counted() -> AsyncIterator[bytes]:
            with server.slot(user, "event sources", config.max_event_sources, "event sources"):
                EVENT_STREAMS.inc()
                try:
                    async for event in events:
                        yield event
                finally:
                    EVENT_STREAMS.dec()

        return StreamingResponse(
            counted(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return [
        Route("/.well-known/jmap", well_known, methods=["GET"]),
        Route("/jmap/session", session, methods=["GET"], name="session"),
        Route("/jmap/api", api, methods=["POST"]),
        Route("/jmap/upload/{accountId}/", upload_route, methods=["POST"]),
        Route("/jmap/download/{accountId}/{blobId}/{name}", download_route, methods=["GET"]),
        Route("/jmap/eventsource/", eventsource, methods=["GET"]),
        Route("/jmap/access-token", access_token, methods=["POST"]),
        WebSocketRoute("/jmap/ws/", websocket),
    ]


def closing(request: Request, response: Response) -> Response:
    """An error to a request with a body may come before the body is read (authentication,
    limits, routing); the server then drops the connection rather than read the rest, so the
    response says so (Connection: close), or a client reusing it loses its next request."""
    if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers:
        response.headers["Connection"] = "close"
    return response


async def request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return closing(request, problem(exc))


async def busy_error(request: Request, exc: Exception) -> Response:
    error = RequestError(
        "about:blank", 503, "the account is busy with other writes; try again shortly",
        headers={"Retry-After": "1"}, title="Service Unavailable",
    )  # fmt: skip
    return closing(request, problem(error))


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem(RequestError("serverFail", 500, "internal server error"))


async def http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or "error"
    # Keep the exception's headers: a 405 must say what is allowed (RFC 9110 §15.5.6).
    headers = dict(getattr(exc, "headers", None) or {})
    return closing(
        request, problem(RequestError("about:blank", status, str(detail), headers=headers))
    )


async def checkpoints(checkpoint: Callable[[], None], every: float = 1.0) -> None:
    """SQLite: the WAL is copied back into the database from here, in a thread of its own,
    not by whichever request's commit crosses the threshold (a tail of tens of ms)."""
    while True:
        await asyncio.sleep(every)
        try:
            await anyio.to_thread.run_sync(checkpoint)
        except Exception:
            log.exception("a WAL checkpoint failed")


async def housekeeping(server: Server) -> None:
    """Forever: expire unused uploads, remove the files of blobs nobody references any more
    (and, now and then, of any blob file no row references), forget old tombstones."""
    config = server.config
    next_sweep = time.time() + config.blob_sweep_interval
    while True:
        await asyncio.sleep(config.housekeeping_interval)
        try:
            sweeping = time.time() >= next_sweep
            if await anyio.to_thread.run_sync(housekeep, server, sweeping):
                next_sweep = time.time() + config.blob_sweep_interval if sweeping else next_sweep
        except Exception:
            log.exception("housekeeping failed")


def housekeep(server: Server, sweeping: bool) -> bool:
    """One round, by one worker of all that share the store at a time (the others skip it);
    whether this one ran it."""
    config, store, blobs = server.config, server.store, server.blobs
    with store.exclusive("housekeeping") as elected:
        if not elected:
            return False
        now = time.time()
        store.expire_blobs(now)
        collect_orphans(store, blobs, config.blob_grace)
        if sweeping:
            sweep(store, blobs, config.blob_grace)
        store.purge_tombstones(now - config.tombstone_ttl)
        expire_subscriptions(store, server.announce_from_thread)
        return True


def create_app(config: Config) -> Starlette:
    from starlette.exceptions import HTTPException

    server = Server(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # What start-up made lives as long as the process: out of the collector's way, whose
        # full collections would otherwise walk it again and again (a tail on requests).
        gc.collect()
        gc.freeze()
        server.webpush.start(asyncio.get_running_loop())
        mail_listeners = await serve_mail(server)  # LMTP, SMTP
        tasks = [asyncio.create_task(housekeeping(server)),
                 asyncio.create_task(server.webpush.run()),
                 asyncio.create_task(server.outbound.run())]  # fmt: skip
        checkpoint = getattr(server.store, "checkpoint", None)
        if checkpoint is not None:
            tasks.append(asyncio.create_task(checkpoints(checkpoint)))
        listen = getattr(server.store, "listen", None)
        if listen is not None:
            # Every node's commits arrive by NOTIFY; those committed while the LISTEN
            # connection was being made (again) are caught up from the states.
            loop = asyncio.get_running_loop()
            listen(
                lambda changed: loop.call_soon_threadsafe(server.bus.publish, changed),
                lambda: asyncio.run_coroutine_threadsafe(
                    catch_up(server.bus, server.store.states), loop
                ),
            )
        else:
            # The other workers on the data directory tell this one at once; what other
            # processes (the command line) commit is read from the states now and then.
            server.fanout = LocalFanout(config.data_dir, server.bus.publish)
            server.fanout.start(asyncio.get_running_loop())
            every = float(config.push_poll_interval)
            tasks.append(asyncio.create_task(poll(server.bus, server.store.states, every)))
        yield
        for task in tasks:
            task.cancel()
        # each task ends before the loop does: a worker thread bound to one that never
        # ended would keep the process from exiting
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.webpush.close()
        for listener in mail_listeners:
            listener.close()
        if server.fanout is not None:
            server.fanout.close(asyncio.get_running_loop())
        server.store.close()

    app = Starlette(
        routes=routes(server),
        middleware=[
            Middleware(
                AccessLog,
                client=lambda scope: client_address(server, HTTPConnection(scope)),
                enabled=bool(config.access_log),
            ),
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "Accept", "Last-Event-ID"],
                expose_headers=["Content-Disposition", "Content-Length", "Content-Range"],
                max_age=86400,
            ),
            Middleware(BodiesOnlyGZip, minimum_size=1024),
        ],
        exception_handlers={
            RequestError: request_error,
            HTTPException: http_error,
            Busy: busy_error,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.state.server = server
    return app
