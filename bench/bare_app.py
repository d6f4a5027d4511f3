"""Minimal ASGI apps used by bench/server_choice.py to compare ASGI servers.

- ``app``: a raw ASGI callable (no framework).
- ``starlette_app``: the same route through Starlette (one Route, fixed bytes).

Both serve ``POST /api`` -> 200 application/json with a fixed small body,
after reading (and discarding) the request body. Anything else -> 404.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"methodResponses":[["Core/echo",{"hello":true},"c1"]],"sessionState":"0"}'

_OK_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
_OK_BODY = {"type": "http.response.body", "body": BODY, "more_body": False}
_NOT_FOUND_START = {
    "type": "http.response.start",
    "status": 404,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9")],
}
_NOT_FOUND_BODY = {"type": "http.response.body", "body": b"not found", "more_body": False}


async def _lifespan(receive, send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send) -> None:
    t = scope["type"]
    if t == "http":
        if scope["method"] == "POST" and scope["path"] == "/api":
            # Drain the request body.
            more = True
            while more:
                msg = await receive()
                if msg["type"] != "http.request":  # http.disconnect
                    return
                more = msg.get("more_body", False)
            await send(_OK_START)
            await send(_OK_BODY)
        else:
            await send(_NOT_FOUND_START)
            await send(_NOT_FOUND_BODY)
    elif t == "lifespan":
        await _lifespan(receive, send)


async def _api(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")


starlette_app = Starlette(routes=[Route("/api", _api, methods=["POST"])])
