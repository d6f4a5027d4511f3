"""Identity (RFC 8621 §6) and the submission capability (§1.3.2).

Every address of an account (its name and each alias; a catch-all "@domain" as "*@domain")
has a default identity the user may edit but not delete (mayDelete false); it comes and goes
with the address (Hooks.provision runs again when the aliases change). The user may make
more, for the same addresses only (else forbiddenFrom): other names, signatures, replyTo.
"""

from __future__ import annotations

from typing import Any

from ..mail.shape import email_address
from ..protocol.engine import DataType, Hooks, Property, register_type
from ..protocol.errors import SetError
from ..protocol.registry import REGISTRY, Capability, Context, personal_only
from ..protocol.values import BOOLEAN, STRING, Kind, ListOf, Nullable, Resolver
from ..store.base import Transaction

SUBMISSION = "urn:ietf:params:jmap:submission"
MAX_DELAYED_SEND = 30 * 86400  # the furthest sendAt (HOLDFOR / HOLDUNTIL) may be, in seconds
# RFC 4865 FUTURERELEASE: the only SMTP extension the queue acts on itself; the rest of the
# envelope's parameters are refused (types/submission.py).
EXTENSIONS = {"FUTURERELEASE": [str(MAX_DELAYED_SEND)]}

REGISTRY.capability(
    Capability(
        SUBMISSION,
        lambda config: {},
        personal_only({"maxDelayedSend": MAX_DELAYED_SEND, "submissionExtensions": EXTENSIONS}),
    )
)


class EmailAddressKind(Kind):
    name = 'an EmailAddress ({"name": String|null, "email": String})'

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if not email_address(value) or set(value) - {"name", "email"}:
            raise ValueError(f"must be {self.name}")
        return {"name": value.get("name"), "email": value["email"]}


def identity_address(address: str) -> str:
    """The email of the identity of an account address ("@domain" → "*@domain")."""
    return "*" + address if address.startswith("@") else address


def allows(identity_email: str, address: str) -> bool:
    """Whether an identity lets its user send as `address` (§6: "*@domain" allows any address
    of the domain)."""
    identity_email, address = identity_email.lower(), address.lower()
    if identity_email.startswith("*@"):
        local, _, domain = address.rpartition("@")
        return bool(local) and domain == identity_email[2:]
    return identity_email == address


class IdentityHooks(Hooks):
    def create(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        # the account's addresses are those of its default identities (provision)
        defaults = [r["email"] for r in txn.get("Identity", None).values() if r.get("_address")]
        if not any(allows(email, record["email"]) for email in defaults):
            raise SetError("forbiddenFrom", f"this account may not send as {record['email']}")
        record["mayDelete"] = True

    def destroy(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        if not record["mayDelete"]:
            raise SetError("forbidden", "the identity of an address of the account stays")

    def provision(self, txn: Transaction, addresses: list[str]) -> None:
        """One undeletable identity for each address; none for an address that has gone."""
        identities = txn.get("Identity", None)
        have = {r.get("_address"): id for id, r in identities.items() if r.get("_address")}
        for address, id in have.items():
            if address not in addresses:
                txn.destroy("Identity", id)
        for address in addresses:
            if address not in have:
                txn.put("Identity", txn.new_id(), {
                    "name": "", "email": identity_address(address), "replyTo": None,
                    "bcc": None, "textSignature": "", "htmlSignature": "", "mayDelete": False,
                    "_address": address,
                })  # fmt: skip


ADDRESSES = Nullable(ListOf(EmailAddressKind()))

IDENTITY = register_type(
    DataType(
        "Identity",
        SUBMISSION,
        (
            Property("name", STRING, default=""),
            Property("email", STRING, immutable=True),
            Property("replyTo", ADDRESSES, default=None),
            Property("bcc", ADDRESSES, default=None),
            Property("textSignature", STRING, default=""),
            Property("htmlSignature", STRING, default=""),
            Property("mayDelete", BOOLEAN, server_set=True),
        ),
        methods=("get", "changes", "set"),
        hooks=IdentityHooks(),
    )
)
