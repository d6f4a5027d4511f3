"""VacationResponse (RFC 8621 §8): one object per account, id "singleton", that makes the
server answer mail delivered while it is enabled (smtp/vacation.py sends the replies)."""

from __future__ import annotations

from typing import Any

from ..protocol.engine import DataType, Hooks, Property, register_type
from ..protocol.errors import SetError, invalid_properties
from ..protocol.registry import REGISTRY, Capability, Context, personal_only
from ..protocol.values import BOOLEAN, STRING, UTC_DATE_KIND, Nullable, utc_seconds
from ..store.base import Transaction

VACATION = "urn:ietf:params:jmap:vacationresponse"
TYPE = "VacationResponse"
SINGLETON = "singleton"
ANSWERED = "_VacationAnswered"  # internal: sender → when last answered (smtp/vacation.py)
DEFAULTS = {"isEnabled": False, "fromDate": None, "toDate": None, "subject": None,
            "textBody": None, "htmlBody": None}  # fmt: skip

REGISTRY.capability(Capability(VACATION, lambda config: {}, personal_only({})))


class VacationHooks(Hooks):
    def create_record(self, ctx: Context, txn: Transaction, given: dict[str, Any],
                      prepared: Any = None) -> dict[str, Any] | None:  # fmt: skip
        raise SetError("singleton", "there is one VacationResponse, id singleton, to update")

    def update(self, ctx: Context, txn: Transaction, old: dict[str, Any],
               new: dict[str, Any]) -> None:  # fmt: skip
        if (
            new["fromDate"]
            and new["toDate"]
            and (utc_seconds(new["toDate"]) <= utc_seconds(new["fromDate"]))
        ):
            raise invalid_properties("toDate must be after fromDate", "toDate")
        if new != old:  # a changed response goes to everyone again (RFC 3834 §2)
            txn.destroy(ANSWERED, SINGLETON)

    def destroy(self, ctx: Context, txn: Transaction, record: dict[str, Any]) -> None:
        raise SetError("singleton", "the VacationResponse cannot be destroyed; disable it")

    def provision(self, txn: Transaction, addresses: list[str]) -> None:
        if not txn.get(TYPE, [SINGLETON]):
            txn.put(TYPE, SINGLETON, dict(DEFAULTS))


register_type(
    DataType(
        TYPE,
        VACATION,
        (
            Property("isEnabled", BOOLEAN, default=False),
            Property("fromDate", Nullable(UTC_DATE_KIND), default=None),
            Property("toDate", Nullable(UTC_DATE_KIND), default=None),
            Property("subject", Nullable(STRING), default=None),
            Property("textBody", Nullable(STRING), default=None),
            Property("htmlBody", Nullable(STRING), default=None),
        ),
        methods=("get", "set"),
        hooks=VacationHooks(),
    )
)
