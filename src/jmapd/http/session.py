"""The Session resource (RFC 8620 §2)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request

from ..protocol.registry import CORE, User

if TYPE_CHECKING:
    from .app import Server


def base_url(server: Server, request: Request) -> str:
    """The configured public URL, else the request's own scheme and Host (absolute URLs: many
    clients fail on path-only ones)."""
    if server.config.public_url:
        return str(server.config.public_url).rstrip("/")
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


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
