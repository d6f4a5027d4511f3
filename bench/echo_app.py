"""jmapd's own ASGI app plus one bare route, so bench/echo.py compares Core/echo with a fixed
JSON response through the same server, middleware and process."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jmapd.http import asgi

BARE = b'{"methodResponses":[["Core/echo",{"hello":true},"c1"]],"sessionState":"0"}'


async def bare(request: Request) -> Response:
    await request.body()
    return Response(BARE, media_type="application/json")


def app() -> Starlette:
    application = asgi.app()
    application.router.routes.insert(0, Route("/bare", bare, methods=["POST"]))
    return application
