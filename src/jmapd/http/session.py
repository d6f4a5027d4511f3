"""The Session resource (RFC 8620 §2)."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import HTTPConnection, Request

from ..config import ConfigError
from ..protocol.errors import RequestError
from ..protocol.registry import CORE, User
from ..push.websocket import WEBSOCKET

if TYPE_CHECKING:
    from .app import Server


# What a Host (or X-Forwarded-Host) may be: a name or address and a port, nothing to inject.
HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def trusted_networks(values: list[str]) -> list[IPv4Network | IPv6Network]:
    """The `trusted_proxies` option: addresses or networks (CIDR)."""
    try:
        return [ipaddress.ip_network(v, strict=False) for v in values]
    except ValueError as e:
        raise ConfigError(f"trusted_proxies: {e}") from None


def _forwarded(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    return value.split(",")[0].strip() if value else None


def base_url(server: Server, request: Request) -> str:
    """The configured public URL, else the request's own scheme and Host (absolute URLs: many
    clients fail on path-only ones) — or, from a trusted proxy, the X-Forwarded-Proto and
    X-Forwarded-Host it sends. Nobody else can move the URLs a client is sent to."""
    if server.config.public_url:
        return str(server.config.public_url).rstrip("/")
    scheme, host = request.url.scheme, request.headers.get("host", request.url.netloc)
    peer = request.client.host if request.client else None
    if peer and _is_trusted(server.trusted_proxies, peer):
        proto = _forwarded(request, "x-forwarded-proto")
        scheme = proto.lower() if proto and proto.lower() in ("http", "https") else scheme
        host = _forwarded(request, "x-forwarded-host") or host
    if not HOST.fullmatch(host):
        raise RequestError("about:blank", 400, "the Host header is not a host name")
    return f"{scheme}://{host}"


def client_address(server: Server, conn: HTTPConnection) -> str:
    """The client's address: the peer's, or from a trusted proxy the last address of
    X-Forwarded-For that is not itself a trusted proxy."""
    peer = conn.client.host if conn.client else ""
    if not (peer and _is_trusted(server.trusted_proxies, peer)):
        return peer or "unknown"
    forwarded = [a.strip() for a in conn.headers.get("x-forwarded-for", "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not _is_trusted(server.trusted_proxies, address):
            return address[:64]
    return peer


def _is_trusted(networks: list[IPv4Network | IPv6Network], peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _content(server: Server, user: User) -> dict[str, Any]:
    registry = server.registry
    accounts = {}
    primary: dict[str, str] = {}
    for access in user.access.values():
        capabilities = registry.account_capabilities(access)
        accounts[access.account_id] = {
            "name": access.name,
            "isPersonal": access.is_personal,
            # A read-only token does not make the account read-only: its writes are
            # `forbidden` by the token's policy (RFC 8620 §3.6.2), not `accountReadOnly`.
            "isReadOnly": access.is_read_only,
            "accountCapabilities": capabilities,
        }
        if access.is_personal:
            primary = dict.fromkeys(capabilities, access.account_id)
    return {
        "capabilities": {
            uri: cap.session(server.config) for uri, cap in registry.capabilities.items()
        },
        "accounts": accounts,
        "primaryAccounts": primary,
        "username": user.name,
    }


def session_state(server: Server, user: User) -> str:
    """Changes whenever anything in the session object but its URLs changes."""
    return hashlib.sha256(orjson.dumps(_content(server, user))).hexdigest()[:16]


def session_object(server: Server, user: User, request: Request) -> dict[str, Any]:
    base = base_url(server, request)
    content = _content(server, user)
    assert CORE in content["capabilities"]
    websocket = content["capabilities"].get(WEBSOCKET)
    if websocket is not None:  # RFC 8887 §3: a ws:// or wss:// URI
        socket_base = "ws" + base.removeprefix("http")
        content["capabilities"][WEBSOCKET] = {**websocket, "url": socket_base + websocket["url"]}
    return {
        **content,
        "apiUrl": f"{base}/jmap/api",
        "downloadUrl": f"{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?type={{type}}",
        "uploadUrl": f"{base}/jmap/upload/{{accountId}}/",
        "eventSourceUrl": (
            f"{base}/jmap/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"
        ),
        "state": user.session_state,
    }
