"""HTTP behaviour around the protocol: CORS, compression, errors for unknown routes and methods,
and HTTP/2 over TLS."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import ssl
from pathlib import Path

import httpx
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import CORE, USING, Client, Server, jmapd, start_server, stop_server

ORIGIN = "https://app.example"


def header_set(value: str) -> set[str]:
    return {v.strip().lower() for v in value.split(",")}


# -- CORS ---------------------------------------------------------------------------------------


def test_cors_preflight(server: Server) -> None:
    with httpx.Client() as http:
        r = http.options(
            server.base + "/jmap/api",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type",
            },
        )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", ORIGIN)
    assert {"authorization", "content-type"} <= header_set(
        r.headers["access-control-allow-headers"]
    )
    assert "post" in header_set(r.headers["access-control-allow-methods"])


def test_cors_preflight_for_upload_and_eventsource(server: Server, ids: dict[str, str]) -> None:
    with httpx.Client() as http:
        for path, method in [
            (f"/jmap/upload/{ids['alice']}/", "POST"),
            ("/jmap/eventsource/?types=*&closeafter=no&ping=0", "GET"),
            ("/jmap/session", "GET"),
        ]:
            r = http.options(
                server.base + path,
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "Authorization",
                },
            )
            assert r.status_code == 200, path
            assert r.headers["access-control-allow-origin"] in ("*", ORIGIN)
            assert method.lower() in header_set(r.headers["access-control-allow-methods"])


def test_cors_on_an_api_request(alice: Client) -> None:
    r = alice.post(
        {"using": USING, "methodCalls": [["Core/echo", {"a": 1}, "c"]]},
        headers={"Origin": ORIGIN},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", ORIGIN)
    assert r.json()["methodResponses"] == [["Core/echo", {"a": 1}, "c"]]


def test_cors_on_an_error_lets_the_browser_read_it(server: Server) -> None:
    """A 401 without CORS headers would be opaque to a web client."""
    with httpx.Client() as http:
        r = http.get(server.base + "/jmap/session", headers={"Origin": ORIGIN})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] in ("*", ORIGIN)


def test_cors_exposes_the_download_headers(alice: Client, ids: dict[str, str]) -> None:
    r = alice.http.post(f"/jmap/upload/{ids['alice']}/", content=b"exposed")
    blob_id = r.json()["blobId"]
    r = alice.http.get(f"/jmap/download/{ids['alice']}/{blob_id}/x.txt", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert {"content-disposition", "content-range"} <= header_set(
        r.headers["access-control-expose-headers"]
    )


# -- compression --------------------------------------------------------------------------------


def echo_body(size: int) -> bytes:
    return orjson.dumps(
        {"using": [CORE], "methodCalls": [["Core/echo", {"text": "jmap " * (size // 5)}, "c"]]}
    )


def test_a_large_response_is_gzipped(alice: Client) -> None:
    body = echo_body(20_000)
    with alice.http.stream(
        "POST",
        "/jmap/api",
        content=body,
        headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"},
    ) as r:
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert len(raw) < 2_000
    response = orjson.loads(gzip.decompress(raw))
    assert response["methodResponses"] == [
        ["Core/echo", {"text": "jmap " * 4_000}, "c"],
    ]


def test_no_compression_without_accept_encoding(alice: Client) -> None:
    r = alice.http.post(
        "/jmap/api",
        content=echo_body(20_000),
        headers={"Content-Type": "application/json", "Accept-Encoding": "identity"},
    )
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert r.json()["methodResponses"][0][1] == {"text": "jmap " * 4_000}


# -- errors -------------------------------------------------------------------------------------


def test_unknown_route_is_a_404_problem(server: Server, alice: Client) -> None:
    for path in ("/nothing-here", "/jmap/nothing", "/jmap/download/x"):
        r = alice.http.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() == {"type": "about:blank", "status": 404, "detail": "Not Found"}


def test_wrong_method_is_a_405_problem_with_allow(alice: Client, ids: dict[str, str]) -> None:
    for method, path, allowed in [
        ("GET", "/jmap/api", {"POST"}),
        ("PUT", "/jmap/api", {"POST"}),
        ("DELETE", "/jmap/session", {"GET", "HEAD"}),
        ("GET", f"/jmap/upload/{ids['alice']}/", {"POST"}),
    ]:
        r = alice.http.request(method, path)
        assert r.status_code == 405, (method, path)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() == {"type": "about:blank", "status": 405, "detail": "Method Not Allowed"}
        assert {m.strip() for m in r.headers["allow"].split(",")} == allowed


# -- HTTP/2 over TLS ----------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jmapd test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_http2_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    jmapd(tmp_path, "account", "add", "tls@example.com", "--password", "tls-secret")
    server = start_server(
        tmp_path, args=["--tls-cert", str(cert), "--tls-key", str(key)], scheme="https"
    )
    try:
        assert server.base.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(http2=True, verify=trust, auth=("tls@example.com", "tls-secret")) as http:
            r = http.get(server.base + "/jmap/session")
            assert r.status_code == 200
            assert r.http_version == "HTTP/2"
            session = r.json()
            assert session["apiUrl"] == server.base + "/jmap/api"
            assert session["uploadUrl"].startswith(server.base + "/")
            r = http.post(
                session["apiUrl"],
                json={"using": [CORE], "methodCalls": [["Core/echo", {"h2": True}, "c"]]},
            )
            assert r.http_version == "HTTP/2"
            assert r.json()["methodResponses"] == [["Core/echo", {"h2": True}, "c"]]
        # Plain HTTP/1.1 over TLS works too.
        with httpx.Client(verify=trust, auth=("tls@example.com", "tls-secret")) as http:
            r = http.get(server.base + "/jmap/session")
            assert r.http_version == "HTTP/1.1"
            assert r.status_code == 200
    finally:
        stop_server(server)
