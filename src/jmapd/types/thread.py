"""Thread (RFC 8621 §3): the Emails of one conversation, kept by the Email type."""

from __future__ import annotations

from ..protocol.engine import DataType, Property, register_type
from ..protocol.values import ID_KIND, ListOf
from .mailbox import MAIL

THREAD = register_type(
    DataType(
        "Thread",
        MAIL,
        (Property("emailIds", ListOf(ID_KIND), server_set=True),),
        methods=("get", "changes"),
    )
)
