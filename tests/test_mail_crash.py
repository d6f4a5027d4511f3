"""The short form of bench/mail_crash.py (issue 12 item 8): jmapd killed with SIGKILL while
a few hundred messages are delivered over 4 LMTP connections, on the backend under test;
every message answered 250 is in the Inbox exactly once after the restart, the Inbox's
counts are right, and `jmapd check` finds nothing wrong. Beside them, drafts sent with
EmailSubmission reach a smarthost exactly once, or at most once for the few (no more than
the queue sends at a time) the server had marked handed over at the instant of the kill."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.mail_crash import BAD, run
from jmapd.smtp.outbound import CONCURRENCY
from tests.conftest import database_env

pytestmark = pytest.mark.usefixtures("backend")


def test_no_delivered_message_is_lost_or_doubled_across_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = database_env(data).get("JMAPD_DATABASE", "")
    lines: list[str] = []
    totals = run(runs=1, messages=300, connections=4, data=data, database=database,
                 report=lines.append)  # fmt: skip
    assert totals["runs"] == 1
    assert totals["acknowledged"] >= 50, lines
    assert {key: totals[key] for key in BAD} == dict.fromkeys(BAD, 0), lines
    window, sent = totals["handed over at the kill"], totals["handed over at the kill, sent"]
    assert sent <= window <= CONCURRENCY, lines
