"""SMTP's one reply after DATA for all recipients (smtp/intake.py `smtp_reply`), from the
replies LMTP would give each: RFC 5321 §6.1, RFC 2033 §1."""

from __future__ import annotations

import pytest

from jmapd.smtp.intake import smtp_reply

OK = "250 2.1.5 <a@example.com> delivered"
BUSY = "452 4.3.0 <b@example.com>: the mailbox is busy; try again later"
FULL = "452 4.3.1 Insufficient system storage; try again later"
GONE = "550 5.1.1 <c@example.com>: no such user here"


@pytest.mark.parametrize(
    "replies, expected",
    [
        ([OK], "250 2.0.0 OK: delivered to 1 recipient(s)"),
        ([OK, OK], "250 2.0.0 OK: delivered to 2 recipient(s)"),
        ([OK, BUSY], BUSY),  # the relay sends it again to both: a 250 would lose it for one
        ([GONE, FULL, OK], FULL),  # for now beats for good: a retry may help
        ([GONE], GONE),
        ([OK, GONE], "250 2.0.0 OK: delivered to 1 recipient(s)"),  # a retry cannot help
    ],
)
def test_one_reply_for_all_recipients(replies: list[str], expected: str) -> None:
    assert smtp_reply(replies) == expected
