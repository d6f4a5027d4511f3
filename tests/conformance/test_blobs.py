"""RFC 8620 §6: binary data. Upload (§6.1), download (§6.2), Blob/copy (§6.3), expiry."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CORE, Client, Server, jmapd, start_server, stop_server

ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")  # §1.2


def limits(client: Client) -> dict[str, Any]:
    return client.session()["capabilities"][CORE]


def upload_url(client: Client, account_id: str) -> str:
    return client.session()["uploadUrl"].replace("{accountId}", account_id)


def download_url(
    client: Client, account_id: str, blob_id: str, name: str, type: str = "application/pdf"
) -> str:
    """The session's downloadUrl template expanded as RFC 6570 level 1 (percent-encoded)."""
    url = client.session()["downloadUrl"]
    values = {"accountId": account_id, "blobId": blob_id, "name": name, "type": type}
    for var, value in values.items():
        url = url.replace("{" + var + "}", urllib.parse.quote(value, safe=""))
    return url


def upload(
    client: Client, account_id: str, data: bytes, type: str = "application/octet-stream"
) -> httpx.Response:
    return client.http.post(
        upload_url(client, account_id), content=data, headers={"Content-Type": type}
    )


def uploaded(client: Client, account_id: str, data: bytes) -> str:
    r = upload(client, account_id, data)
    assert r.status_code == 201, r.text
    blob_id: str = r.json()["blobId"]
    return blob_id


def unique(size: int = 64) -> bytes:
    """Bytes no other test uploads (blob ids are content addresses)."""
    return secrets.token_bytes(size)


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = r.json()
    assert problem["status"] == status
    assert isinstance(problem["type"], str) and problem["type"]
    return problem


# -- upload (§6.1) ------------------------------------------------------------------------------


def test_upload_returns_exactly_the_blob_description(alice: Client, ids: dict[str, str]) -> None:
    data = unique(300)
    r = upload(alice, ids["alice"], data, "application/pdf")
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"accountId", "blobId", "type", "size"}
    assert body["accountId"] == ids["alice"]
    assert body["type"] == "application/pdf"
    assert body["size"] == 300
    assert ID.match(body["blobId"]), body["blobId"]


def test_upload_type_keeps_parameters(alice: Client, ids: dict[str, str]) -> None:
    r = upload(alice, ids["alice"], "grüße".encode(), "text/plain; charset=utf-8")
    assert r.status_code == 201
    assert r.json()["type"] == "text/plain; charset=utf-8"
    assert r.json()["size"] == len("grüße".encode())


def test_upload_of_nothing_is_a_blob_of_size_zero(alice: Client, ids: dict[str, str]) -> None:
    r = upload(alice, ids["alice"], b"")
    assert r.status_code == 201
    assert r.json()["size"] == 0
    r = alice.http.get(download_url(alice, ids["alice"], r.json()["blobId"], "empty", "text/plain"))
    assert r.status_code == 200
    assert r.content == b""


def test_same_bytes_give_the_same_blob_id(alice: Client, ids: dict[str, str]) -> None:
    data = unique()
    first = upload(alice, ids["alice"], data, "text/plain").json()
    second = upload(alice, ids["alice"], data, "image/png").json()
    other = upload(alice, ids["alice"], data + b"!", "text/plain").json()
    assert second["blobId"] == first["blobId"]
    assert second["type"] == "image/png"  # the type belongs to the upload, not the blob
    assert other["blobId"] != first["blobId"]


def test_upload_to_a_shared_account(alice: Client, ids: dict[str, str]) -> None:
    r = upload(alice, ids["bob"], b"for bob")
    assert r.status_code == 201
    assert r.json()["accountId"] == ids["bob"]


def test_an_unused_upload_is_visible_only_to_its_uploader(
    alice: Client, bob: Client, ids: dict[str, str]
) -> None:
    """§6.1: until a record uses it, an upload is visible only to its uploader, even in a shared
    account; another user who uploads the same bytes gets their own access to it."""
    data = unique()
    blob_id = uploaded(alice, ids["bob"], data)
    assert alice.http.get(download_url(alice, ids["bob"], blob_id, "x")).content == data
    assert_problem(bob.http.get(download_url(bob, ids["bob"], blob_id, "x")), 404)
    assert uploaded(bob, ids["bob"], data) == blob_id
    assert bob.http.get(download_url(bob, ids["bob"], blob_id, "x")).content == data


def test_upload_to_an_account_the_user_cannot_see_is_404(
    alice: Client, bob: Client, ids: dict[str, str]
) -> None:
    assert_problem(upload(bob, ids["alice"], b"not yours"), 404)
    assert_problem(upload(alice, "nosuchaccount", b"nowhere"), 404)


def test_upload_to_a_read_only_account_is_403(alice: Client, ids: dict[str, str]) -> None:
    assert_problem(upload(alice, ids["carol"], b"read only"), 403)


def test_upload_needs_authentication(server: Server, ids: dict[str, str]) -> None:
    with httpx.Client() as http:
        r = http.post(f"{server.base}/jmap/upload/{ids['alice']}/", content=b"x")
    assert_problem(r, 401)


def test_upload_over_max_size_upload_is_413(alice: Client, ids: dict[str, str]) -> None:
    limit = limits(alice)["maxSizeUpload"]
    r = upload(alice, ids["alice"], b"x" * (limit + 1))
    problem = assert_problem(r, 413)
    assert problem["type"] == "urn:ietf:params:jmap:error:limit"
    assert problem["limit"] == "maxSizeUpload"


def test_upload_over_max_size_upload_without_content_length_is_413(
    alice: Client, ids: dict[str, str]
) -> None:
    """A chunked body is counted as it arrives."""
    limit = limits(alice)["maxSizeUpload"]

    def body() -> Iterator[bytes]:
        for _ in range(limit // 10_000 + 1):
            yield b"y" * 10_000

    r = alice.http.post(upload_url(alice, ids["alice"]), content=body())
    assert r.request.headers["transfer-encoding"] == "chunked"
    problem = assert_problem(r, 413)
    assert problem["type"] == "urn:ietf:params:jmap:error:limit"
    assert problem["limit"] == "maxSizeUpload"


def test_upload_of_exactly_max_size_upload_succeeds(alice: Client, ids: dict[str, str]) -> None:
    limit = limits(alice)["maxSizeUpload"]
    data = unique(16) + b"z" * (limit - 16)
    r = upload(alice, ids["alice"], data)
    assert r.status_code == 201, r.text
    assert r.json()["size"] == limit


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length, read from a raw socket."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {raw!r}"
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def test_max_concurrent_upload_is_enforced(
    server: Server, alice: Client, ids: dict[str, str]
) -> None:
    """Hold maxConcurrentUpload uploads open; one more is refused with 429.

    Each held upload sends `Expect: 100-continue` and only its headers: the server sends
    "100 Continue" when the handler starts reading the body, which it does after taking its
    upload slot. So once every held upload has had its 100, all slots are taken.
    """
    allowed = limits(alice)["maxConcurrentUpload"]
    host, port = server.base.removeprefix("http://").split(":")
    login = f"alice@example.com:{server.passwords['alice@example.com']}"
    credentials = base64.b64encode(login.encode()).decode()
    path = urllib.parse.urlsplit(upload_url(alice, ids["alice"])).path
    payloads = [unique(32) for _ in range(allowed)]
    held: list[socket.socket] = []
    try:
        for payload in payloads:
            sock = socket.create_connection((host, int(port)), timeout=10)
            held.append(sock)
            sock.sendall(
                (
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Authorization: Basic {credentials}\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\n\r\n"
                ).encode()
            )
            assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"

        r = upload(alice, ids["alice"], b"one too many")
        problem = assert_problem(r, 429)
        assert problem["type"] == "urn:ietf:params:jmap:error:limit"
        assert problem["limit"] == "maxConcurrentUpload"

        for sock, payload in zip(held, payloads, strict=True):
            sock.sendall(payload)
            status, headers, body = read_response(sock)
            assert status == 201, body
            assert headers["content-type"] == "application/json"
    finally:
        for sock in held:
            sock.close()
    # The slots are free again.
    assert upload(alice, ids["alice"], b"one too many").status_code == 201


# -- download (§6.2) ----------------------------------------------------------------------------

BINARY = bytes(range(256)) * 8 + b"\x00\xff\x00\r\n\xff"


@pytest.fixture(scope="module")
def binary_blob(alice: Client, ids: dict[str, str]) -> str:
    return uploaded(alice, ids["alice"], BINARY)


def test_download_returns_the_exact_bytes(
    alice: Client, ids: dict[str, str], binary_blob: str
) -> None:
    r = alice.http.get(download_url(alice, ids["alice"], binary_blob, "data.bin"))
    assert r.status_code == 200
    assert r.content == BINARY
    assert r.headers["content-length"] == str(len(BINARY))


def test_download_content_type_is_the_type_parameter(
    alice: Client, ids: dict[str, str], binary_blob: str
) -> None:
    for media_type in ("application/pdf", "image/png", "text/plain; charset=utf-8"):
        r = alice.http.get(download_url(alice, ids["alice"], binary_blob, "x", media_type))
        assert r.status_code == 200
        assert r.headers["content-type"] == media_type


def test_download_with_a_bad_type_is_400(
    alice: Client, ids: dict[str, str], binary_blob: str
) -> None:
    r = alice.http.get(download_url(alice, ids["alice"], binary_blob, "x", "not a type\r\nX: y"))
    assert_problem(r, 400)


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name(
    alice: Client, ids: dict[str, str], binary_blob: str
) -> None:
    """RFC 6266: filename= in ASCII, filename*= in RFC 8187 UTF-8 encoding."""
    name = "Grüße 日本.pdf"
    r = alice.http.get(download_url(alice, ids["alice"], binary_blob, name))
    assert r.status_code == 200
    disposition = r.headers["content-disposition"]
    assert disposition == (
        "attachment; filename=\"Gr__e __.pdf\"; filename*=UTF-8''"
        "Gr%C3%BC%C3%9Fe%20%E6%97%A5%E6%9C%AC.pdf"
    )
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert urllib.parse.unquote(encoded, encoding="utf-8", errors="strict") == name


def test_content_disposition_of_an_ascii_name(
    alice: Client, ids: dict[str, str], binary_blob: str
) -> None:
    r = alice.http.get(download_url(alice, ids["alice"], binary_blob, 'my "report".pdf'))
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"my _report_.pdf\"; filename*=UTF-8''my%20%22report%22.pdf"
    )


def test_download_is_cacheable_forever_and_privately(
    alice: Client, ids: dict[str, str], binary_blob: str
) -> None:
    r = alice.http.get(download_url(alice, ids["alice"], binary_blob, "x"))
    directives = {d.strip() for d in r.headers["cache-control"].split(",")}
    assert {"private", "immutable"} <= directives
    assert "public" not in directives


def test_range_request_returns_the_slice(
    alice: Client, ids: dict[str, str], binary_blob: str
) -> None:
    url = download_url(alice, ids["alice"], binary_blob, "x")
    r = alice.http.get(url, headers={"Range": "bytes=250-261"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 250-261/{len(BINARY)}"
    assert r.content == BINARY[250:262]
    r = alice.http.get(url, headers={"Range": "bytes=-6"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {len(BINARY) - 6}-{len(BINARY) - 1}/{len(BINARY)}"
    assert r.content == b"\x00\xff\x00\r\n\xff"


def test_unsatisfiable_range_is_416(alice: Client, ids: dict[str, str], binary_blob: str) -> None:
    url = download_url(alice, ids["alice"], binary_blob, "x")
    r = alice.http.get(url, headers={"Range": f"bytes={len(BINARY)}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(BINARY)}"


def test_download_of_an_unknown_blob_is_404(alice: Client, ids: dict[str, str]) -> None:
    missing = "B" + "0" * 64
    assert_problem(alice.http.get(download_url(alice, ids["alice"], missing, "x")), 404)
    assert_problem(alice.http.get(download_url(alice, ids["alice"], "nonsense", "x")), 404)


def test_download_from_an_unknown_account_is_404(alice: Client, binary_blob: str) -> None:
    assert_problem(alice.http.get(download_url(alice, "nosuchaccount", binary_blob, "x")), 404)


def test_other_users_cannot_download_a_blob_by_its_id(
    bob: Client, ids: dict[str, str], binary_blob: str
) -> None:
    """Bob knows the id of alice's blob: neither alice's account nor his own gives it to him."""
    assert_problem(bob.http.get(download_url(bob, ids["alice"], binary_blob, "x")), 404)
    assert_problem(bob.http.get(download_url(bob, ids["bob"], binary_blob, "x")), 404)


def test_a_blob_belongs_to_the_account_it_was_uploaded_to(
    alice: Client, ids: dict[str, str]
) -> None:
    blob_id = uploaded(alice, ids["alice"], unique())
    assert alice.http.get(download_url(alice, ids["alice"], blob_id, "x")).status_code == 200
    assert_problem(alice.http.get(download_url(alice, ids["bob"], blob_id, "x")), 404)
    assert_problem(alice.http.get(download_url(alice, ids["carol"], blob_id, "x")), 404)


def test_download_needs_authentication(server: Server, ids: dict[str, str]) -> None:
    with httpx.Client() as http:
        r = http.get(f"{server.base}/jmap/download/{ids['alice']}/B{'0' * 64}/x")
    assert_problem(r, 401)


# -- Blob/copy (§6.3) ---------------------------------------------------------------------------


def blob_copy(client: Client, args: dict[str, Any]) -> list[Any]:
    return client.call("Blob/copy", args)


def test_blob_copy_to_another_account(alice: Client, ids: dict[str, str]) -> None:
    data = unique(100)
    blob_id = uploaded(alice, ids["alice"], data)
    assert_problem(alice.http.get(download_url(alice, ids["bob"], blob_id, "x")), 404)
    name, result = blob_copy(
        alice, {"fromAccountId": ids["alice"], "accountId": ids["bob"], "blobIds": [blob_id]}
    )
    assert name == "Blob/copy"
    assert result == {
        "fromAccountId": ids["alice"],
        "accountId": ids["bob"],
        "copied": {blob_id: blob_id},
        "notCopied": None,
    }
    copy = result["copied"][blob_id]
    r = alice.http.get(download_url(alice, ids["bob"], copy, "copy.bin"))
    assert r.status_code == 200
    assert r.content == data


def test_blob_copy_of_an_unknown_blob_is_not_found(alice: Client, ids: dict[str, str]) -> None:
    blob_id = uploaded(alice, ids["alice"], unique())
    missing = "B" + "f" * 64
    name, result = blob_copy(
        alice,
        {"fromAccountId": ids["alice"], "accountId": ids["bob"], "blobIds": [blob_id, missing]},
    )
    assert name == "Blob/copy"
    assert result["copied"] == {blob_id: blob_id}
    assert list(result["notCopied"]) == [missing]
    assert result["notCopied"][missing]["type"] == "notFound"


def test_blob_copy_with_nothing_copied_has_copied_null(alice: Client, ids: dict[str, str]) -> None:
    missing = "Bnothere"
    name, result = blob_copy(
        alice, {"fromAccountId": ids["alice"], "accountId": ids["bob"], "blobIds": [missing]}
    )
    assert name == "Blob/copy"
    assert result["copied"] is None
    assert result["notCopied"][missing]["type"] == "notFound"


def test_blob_copy_only_finds_blobs_in_the_from_account(alice: Client, ids: dict[str, str]) -> None:
    """A blob in bob's account cannot be copied out of alice's."""
    blob_id = uploaded(alice, ids["bob"], unique())
    _, result = blob_copy(
        alice, {"fromAccountId": ids["alice"], "accountId": ids["bob"], "blobIds": [blob_id]}
    )
    assert result["copied"] is None
    assert result["notCopied"][blob_id]["type"] == "notFound"


def test_blob_copy_from_an_unknown_account(alice: Client, bob: Client, ids: dict[str, str]) -> None:
    blob_id = uploaded(alice, ids["alice"], unique())
    args = {"fromAccountId": "nosuchaccount", "accountId": ids["alice"], "blobIds": [blob_id]}
    name, result = blob_copy(alice, args)
    assert name == "error"
    assert result["type"] == "fromAccountNotFound"
    # An account the user has no access to is not found either.
    args = {"fromAccountId": ids["alice"], "accountId": ids["bob"], "blobIds": [blob_id]}
    name, result = blob_copy(bob, args)
    assert name == "error"
    assert result["type"] == "fromAccountNotFound"


def test_blob_copy_to_an_unknown_account(alice: Client, ids: dict[str, str]) -> None:
    blob_id = uploaded(alice, ids["alice"], unique())
    args = {"fromAccountId": ids["alice"], "accountId": "nosuchaccount", "blobIds": [blob_id]}
    name, result = blob_copy(alice, args)
    assert name == "error"
    assert result["type"] == "accountNotFound"


def test_blob_copy_to_a_read_only_account(alice: Client, ids: dict[str, str]) -> None:
    blob_id = uploaded(alice, ids["alice"], unique())
    args = {"fromAccountId": ids["alice"], "accountId": ids["carol"], "blobIds": [blob_id]}
    name, result = blob_copy(alice, args)
    assert name == "error"
    assert result["type"] == "accountReadOnly"
    assert_problem(alice.http.get(download_url(alice, ids["carol"], blob_id, "x")), 404)


def test_blob_copy_with_bad_arguments(alice: Client, ids: dict[str, str]) -> None:
    name, result = blob_copy(alice, {"fromAccountId": ids["alice"], "accountId": ids["bob"]})
    assert name == "error"
    assert result["type"] == "invalidArguments"


# -- expiry -------------------------------------------------------------------------------------


def test_unused_uploads_expire(tmp_path: Path) -> None:
    """With upload_ttl 1 s an upload that nothing uses is gone after a second."""
    jmapd(tmp_path, "account", "add", "erin@example.com", "--password", "erin-secret")
    (erin_id,) = [line.split()[0] for line in jmapd(tmp_path, "account", "list").splitlines()]
    server = start_server(tmp_path, env={"JMAPD_UPLOAD_TTL": "1"})
    try:
        erin = server.client_with(("erin@example.com", "erin-secret"))
        blob_id = uploaded(erin, erin_id, b"short-lived")
        url = download_url(erin, erin_id, blob_id, "x")
        r = erin.http.get(url)
        assert r.status_code == 200
        assert r.content == b"short-lived"
        time.sleep(1.2)
        assert_problem(erin.http.get(url), 404)
        _, result = erin.call("Email/parse", {"accountId": erin_id, "blobIds": [blob_id]})
        assert result["notFound"] == [blob_id]
        # Uploading the same bytes again brings it back, with the same id.
        assert uploaded(erin, erin_id, b"short-lived") == blob_id
        assert erin.http.get(url).status_code == 200
    finally:
        stop_server(server)


def blob_dir_user(tmp_path: Path, name: str) -> tuple[Path, Path, str]:
    """A data directory and a blob directory beside it, with one user `name@example.com`
    (password `name-secret`): (data, blob directory, account id)."""
    data, shared = tmp_path / "data", tmp_path / "shared-blobs"
    data.mkdir()
    jmapd(data, "account", "add", f"{name}@example.com", "--password", f"{name}-secret")
    (account_id,) = [line.split()[0] for line in jmapd(data, "account", "list").splitlines()]
    return data, shared, account_id


def test_blob_dir_puts_blob_files_where_configured(tmp_path: Path) -> None:
    """`--blob-dir`: the directory nodes sharing a database share for blob bytes."""
    data, shared, kim_id = blob_dir_user(tmp_path, "kim")
    server = start_server(data, args=["--blob-dir", str(shared)])
    try:
        kim = server.client_with(("kim@example.com", "kim-secret"))
        blob_id = uploaded(kim, kim_id, b"stored elsewhere")
        digest = blob_id[1:]
        assert (shared / digest[:2] / digest).read_bytes() == b"stored elsewhere"
        assert not (data / "blobs" / digest[:2]).exists()
        assert kim.http.get(download_url(kim, kim_id, blob_id, "x")).content == b"stored elsewhere"
    finally:
        stop_server(server)


def test_blob_files_of_the_two_level_layout_move_up_a_level(tmp_path: Path) -> None:
    """Blob files lived in blobs/ab/cd/<sha256>: a directory of its own for nearly every file
    of a small store, 4 KiB each (39 of 205 MB for 10,000 messages). They now live in
    blobs/ab/<sha256>; a directory of the old layout is flattened when the server starts,
    and what it held reads as before."""
    data, shared, lou_id = blob_dir_user(tmp_path, "lou")
    server = start_server(data, args=["--blob-dir", str(shared)])
    try:
        lou = server.client_with(("lou@example.com", "lou-secret"))
        blob_ids = [uploaded(lou, lou_id, f"blob {i}".encode()) for i in range(3)]
    finally:
        stop_server(server)
    (shared / ".one-level").unlink()  # the mark of the new layout, which an old one lacks
    for blob_id in blob_ids:  # as the old layout had them
        digest = blob_id[1:]
        old = shared / digest[:2] / digest[2:4] / digest
        old.parent.mkdir()
        (shared / digest[:2] / digest).rename(old)
    leftover = shared / "ab" / "cd" / ".tmp-killed"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    server = start_server(data, args=["--blob-dir", str(shared)])
    try:
        lou = server.client_with(("lou@example.com", "lou-secret"))
        for i, blob_id in enumerate(blob_ids):
            url = download_url(lou, lou_id, blob_id, "x")
            assert lou.http.get(url).content == f"blob {i}".encode()
            digest = blob_id[1:]
            assert (shared / digest[:2] / digest).read_bytes() == f"blob {i}".encode()
        assert [p for p in shared.rglob("*") if p.parent != shared and p.is_dir()] == []
        assert (shared / "ab" / ".tmp-killed").read_bytes() == b"half"  # for the sweep
    finally:
        stop_server(server)


def test_two_processes_flatten_the_old_layout_at_once(tmp_path: Path) -> None:
    """Workers of one server open the blob directory at the same moment: both flatten it,
    neither fails on what the other moved or removed, and every file ends one level up."""
    root = tmp_path / "blobs"
    names = []
    for i in range(3000):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        path = root / digest[:2] / digest[2:4] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(i))
        names.append(digest)
    opener = f"from pathlib import Path; from jmapd.store.blobs import FileBlobStore; " \
             f"FileBlobStore(Path({str(root)!r}))"  # fmt: skip
    workers = [subprocess.Popen([sys.executable, "-c", opener], stderr=subprocess.PIPE)
               for _ in range(2)]  # fmt: skip
    for worker in workers:
        _, errors = worker.communicate(timeout=60)
        assert worker.returncode == 0, errors
    for i, digest in enumerate(names):
        assert (root / digest[:2] / digest).read_text() == str(i)
    assert [p for p in root.rglob("*") if p.is_dir() and p.parent != root] == []
    assert (root / ".one-level").exists()
