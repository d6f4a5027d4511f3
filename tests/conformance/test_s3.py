"""Issue 11: blobs in an S3-compatible store (blob_store s3), against a real S3 server the
tests start (moto's standalone server, speaking the S3 HTTP API as MinIO, Garage and AWS do):
uploads, downloads with Range, mail, deletion, housekeeping; and several nodes that share
only the database and the bucket. On both backends."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.test_email import import_, message
from tests.conftest import Server, database_env, free_port, jmapd, start_server, stop_server

PASSWORD = "s3-secret"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A running S3 server (moto's), with a bucket named jmapd; its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(endpoint)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        s3_client(endpoint).create_bucket(Bucket="jmapd")
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip


def objects(endpoint: str, prefix: str) -> set[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket="jmapd", Prefix=prefix)
    return {"B" + o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", [])}


def s3_env(endpoint: str, prefix: str) -> dict[str, str]:
    return {"JMAPD_BLOB_STORE": "s3", "JMAPD_S3_BUCKET": "jmapd", "JMAPD_S3_PREFIX": prefix,
            "JMAPD_S3_ENDPOINT": endpoint, **KEYS, "JMAPD_HOUSEKEEPING_INTERVAL": "1",
            "JMAPD_BLOB_GRACE": "0"}  # fmt: skip


def download(client: Any, account_id: str, blob_id: str, headers: dict[str, str] | None = None
             ) -> httpx.Response:  # fmt: skip
    url = client.session()["downloadUrl"]
    for var, value in {"accountId": account_id, "blobId": blob_id, "name": "x",
                       "type": "application/octet-stream"}.items():  # fmt: skip
        url = url.replace("{" + var + "}", value)
    return client.http.get(url, headers=headers or {})


@pytest.fixture
def nodes(s3: str, tmp_path: Path) -> Iterator[tuple[list[Server], str, str]]:
    """Two nodes with blobs in the bucket: on PostgreSQL each with a data directory of its
    own (they share the database and the bucket, nothing else); on SQLite sharing the data
    directory, which holds the database."""
    prefix = f"t{time.monotonic_ns()}"
    jmapd(tmp_path, "account", "add", "sal@example.com", "--password", PASSWORD)
    env = {**s3_env(s3, prefix), **database_env(tmp_path)}
    places = [tmp_path, tmp_path]
    if env.get("JMAPD_DATABASE"):
        places = [tmp_path / "a", tmp_path / "b"]
        for place in places:
            place.mkdir()
    servers = [start_server(place, env=env) for place in places]
    try:
        yield servers, prefix, s3
    finally:
        for server in servers:
            stop_server(server)


def test_blobs_live_in_the_bucket(nodes: tuple[list[Server], str, str]) -> None:
    (a, b), prefix, endpoint = nodes
    sal_a, sal_b = (s.client_with(("sal@example.com", PASSWORD)) for s in (a, b))
    account_id = sal_a.session()["primaryAccounts"]["urn:ietf:params:jmap:mail"]
    data = bytes(range(256)) * 8
    url = sal_a.session()["uploadUrl"].replace("{accountId}", account_id)
    blob_id = sal_a.http.post(url, content=data).json()["blobId"]
    assert blob_id in objects(endpoint, prefix)
    assert not any(f.is_file() for f in (a.data / "blobs").rglob("*"))  # no blob files
    # Read through the other node, whole and by range.
    assert download(sal_b, account_id, blob_id).content == data
    r = download(sal_b, account_id, blob_id, {"Range": "bytes=10-19"})
    assert (r.status_code, r.content) == (206, data[10:20])
    # Mail: imported through one node, its body read through the other.
    inbox = next(m["id"] for m in sal_b.ok("Mailbox/get", {"accountId": account_id,
                 "ids": None})["list"] if m["role"] == "inbox")  # fmt: skip
    created = import_(sal_a, account_id, inbox, message("Bucket", "<bucket@example.com>"))
    got = sal_b.ok("Email/get", {"accountId": account_id, "ids": [created["id"]],
                                 "fetchTextBodyValues": True})["list"][0]  # fmt: skip
    assert "Hello Bucket." in next(iter(got["bodyValues"].values()))["value"]
    # Deleted means gone: from the bucket too.
    assert created["blobId"] in objects(endpoint, prefix)
    sal_b.ok("Email/set", {"accountId": account_id, "destroy": [created["id"]]})
    assert download(sal_a, account_id, created["blobId"]).status_code == 404
    deadline = time.monotonic() + 15
    while created["blobId"] in objects(endpoint, prefix) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert created["blobId"] not in objects(endpoint, prefix)


def test_a_bad_s3_setting_stops_the_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jmapd.cli", "serve", "--data", str(tmp_path),
         "--listen", f"127.0.0.1:{free_port()}"],
        env={"PATH": "/usr/bin:/bin", "JMAPD_BLOB_STORE": "s3"},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == "jmapd: blob_store s3 needs s3_bucket\n"
