"""Housekeeping: unused uploads and their files go away (RFC 8620 §6.1: the server may delete
unreferenced blobs after a period); old tombstones are forgotten and /changes from before them
answers cannotCalculateChanges (§5.2)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conformance.test_hardening import stored
from tests.conftest import Client, Server, jmapd, start_server, stop_server


@pytest.fixture
def swept(tmp_path: Path) -> Iterator[tuple[Server, Client, str]]:
    jmapd(tmp_path, "account", "add", "gus@example.com", "--password", "gus-secret")
    (gus_id,) = [line.split()[0] for line in jmapd(tmp_path, "account", "list").splitlines()]
    env = {
        "JMAPD_UPLOAD_TTL": "1",
        "JMAPD_TOMBSTONE_TTL": "1",
        "JMAPD_HOUSEKEEPING_INTERVAL": "1",
        "JMAPD_BLOB_GRACE": "1",
    }
    server = start_server(tmp_path, env=env)
    try:
        yield server, server.client_with(("gus@example.com", "gus-secret")), gus_id
    finally:
        stop_server(server)


def wait_for(condition: Callable[[], bool], seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_an_unused_upload_and_its_file_are_removed(swept: tuple[Server, Client, str]) -> None:
    server, gus, gus_id = swept
    url = gus.session()["uploadUrl"].replace("{accountId}", gus_id)
    r = gus.http.post(url, content=b"nobody uses me", headers={"Content-Type": "text/plain"})
    assert r.status_code == 201
    blob_id = r.json()["blobId"]
    assert stored(server, blob_id)
    assert wait_for(lambda: not stored(server, blob_id)), "the unused blob was not removed"


def test_old_tombstones_are_forgotten(swept: tuple[Server, Client, str]) -> None:
    _, gus, gus_id = swept
    created = gus.ok("Note/set", {"accountId": gus_id, "create": {"n": {"title": "gone"}}})
    before = created["oldState"]
    note_id = created["created"]["n"]["id"]
    gus.ok("Note/set", {"accountId": gus_id, "destroy": [note_id]})
    changes = gus.ok("Note/changes", {"accountId": gus_id, "sinceState": before})
    assert changes["destroyed"] == []  # created and destroyed since: neither
    middle = created["newState"]

    def forgotten() -> bool:
        name, result = gus.call("Note/changes", {"accountId": gus_id, "sinceState": middle})
        return name == "error" and result["type"] == "cannotCalculateChanges"

    assert wait_for(forgotten), "the tombstone was kept past tombstone_ttl"
    # The current state still works.
    state = gus.ok("Note/get", {"accountId": gus_id, "ids": []})["state"]
    assert gus.ok("Note/changes", {"accountId": gus_id, "sinceState": state})["updated"] == []
