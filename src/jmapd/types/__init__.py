"""The data types: one module each, a declaration over the generic engine. Importing this
package registers the core; `load` registers every type."""

from __future__ import annotations

import importlib

from ..protocol import core  # noqa: F401  (the core capability and methods)

MODULES: tuple[str, ...] = (
    "mailbox",
    "thread",
    "email.email",
    "email.get",
    "email.imports",
    "email.parse",
    "email.snippet",
    "push_subscription",
    "identity",
    "submission",
    "vacation",
    "mdn",
    "contacts.card",
    "contacts.address_book",
)


def load(extra_modules: list[str] | tuple[str, ...] = ()) -> None:
    """Register every built-in type, then the configured extra modules."""
    for module in (*(f"{__name__}.{m}" for m in MODULES), *extra_modules):
        importlib.import_module(module)
