"""Contacts (RFC 9610): AddressBook and ContactCard over the JSContact model (RFC 9553), and
vCard in and out (RFC 9555). The capability is declared here; the types in their modules."""

from __future__ import annotations

from typing import Any

from ...protocol.registry import REGISTRY, Capability
from ...store.base import Access

CONTACTS = "urn:ietf:params:jmap:contacts"
MAX_ADDRESS_BOOKS_PER_CARD = 100


def _account_capability(access: Access) -> dict[str, Any]:
    # RFC 9610 §1.4.1
    return {
        "maxAddressBooksPerCard": MAX_ADDRESS_BOOKS_PER_CARD,
        "mayCreateAddressBook": not access.is_read_only,
    }


REGISTRY.capability(Capability(CONTACTS, lambda config: {}, _account_capability))
