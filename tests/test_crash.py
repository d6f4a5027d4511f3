"""The short form of bench/crash.py (issue 10): jmapd killed with SIGKILL under a mixed
import and Email/set load, twice, on the backend under test; no acknowledged write is lost
or duplicated, and `jmapd check` finds nothing wrong after each restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.crash import run
from tests.conftest import database_env

pytestmark = pytest.mark.usefixtures("backend")


def test_no_acknowledged_write_is_lost_across_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = database_env(data).get("JMAPD_DATABASE", "")
    lines: list[str] = []
    totals = run(runs=2, seconds=2, clients=3, data=data, database=database, report=lines.append)
    assert totals["runs"] == 2
    assert totals["acknowledged"] > 10, lines
    assert (totals["lost"], totals["duplicated"], totals["check problems"]) == (0, 0, 0), lines
