"""Fixtures: a real jmapd process on a free port, real HTTP clients, accounts made by the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
TEST = "urn:jmapd:test"
TEST_PERSONAL = "urn:jmapd:test:personal"
USING = [CORE, MAIL, TEST, TEST_PERSONAL]
SUPPORT = Path(__file__).parent / "support"

# Small limits so the tests can reach them; the tests read them from the session object.
LIMITS = {
    "JMAPD_MAX_SIZE_UPLOAD": "1000000",
    "JMAPD_MAX_CONCURRENT_UPLOAD": "2",
    "JMAPD_MAX_SIZE_REQUEST": "200000",
    "JMAPD_MAX_CONCURRENT_REQUESTS": "4",
    "JMAPD_MAX_CALLS_IN_REQUEST": "16",
    "JMAPD_MAX_OBJECTS_IN_GET": "50",
    "JMAPD_MAX_OBJECTS_IN_SET": "50",
    # An open event source learns within a second that its credential was revoked.
    "JMAPD_CREDENTIAL_CHECK_INTERVAL": "1",
    # One worker: the limits above are counted per worker process.
    "JMAPD_WORKERS": "1",
    # The tests fail logins on purpose from one address; test_limits.py throttles.
    "JMAPD_LOGIN_FAILURES_FREE": "1000000",
    # PushSubscriptions may name the tests' push endpoint on loopback, over http.
    "JMAPD_PUSH_ALLOW_LOOPBACK": "true",
}


# The storage backends every server test runs on; scripts/test sets JMAPD_TEST_BACKENDS.
BACKENDS = os.environ.get("JMAPD_TEST_BACKENDS", "sqlite,postgresql").split(",")
POSTGRES_ADMIN = os.environ.get(
    "JMAPD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class Databases:
    """One fresh database per data directory, on the backend the running tests are using."""

    def __init__(self) -> None:
        self.backend = "sqlite"
        self.by_data: dict[Path, str] = {}
        self.created: list[str] = []

    def url(self, data: Path) -> str:
        if data not in self.by_data:
            self.by_data[data] = self._create() if self.backend == "postgresql" else ""
        return self.by_data[data]

    def _create(self) -> str:
        import secrets

        import psycopg

        name = "jmapd_test_" + secrets.token_hex(6)
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        self.created.append(name)
        return POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        if not self.created:
            return
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            for name in self.created:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.created.clear()


DATABASES = Databases()


def database_env(data: Path) -> dict[str, str]:
    url = DATABASES.url(data)
    return {"JMAPD_DATABASE": url} if url else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def jmapd(data: Path, *args: str, input: str | None = None) -> str:
    """Run the jmapd command line against a data directory; return its output."""
    result = subprocess.run(
        [sys.executable, "-m", "jmapd.cli", *args, "--data", str(data)],
        env={**os.environ, **database_env(data)},
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"jmapd {' '.join(args)} failed: {result.stderr}")
    return result.stdout


class Client:
    """A JMAP client speaking real HTTP to the server."""

    def __init__(self, base: str, auth: Any) -> None:
        headers = {"Authorization": f"Bearer {auth}"} if isinstance(auth, str) else {}
        self.http = httpx.Client(
            base_url=base,
            auth=auth if isinstance(auth, tuple) else None,
            headers=headers,
            timeout=30,
        )

    def session(self) -> dict[str, Any]:
        r = self.http.get("/jmap/session")
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, body: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post("/jmap/api", json=body, **kwargs)

    def request(
        self, calls: list[list[Any]], using: list[str] = USING, created_ids: Any = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"using": using, "methodCalls": calls}
        if created_ids is not None:
            body["createdIds"] = created_ids
        r = self.post(body)
        assert r.status_code == 200, r.text
        return r.json()

    def call(self, name: str, args: dict[str, Any], using: list[str] = USING) -> list[Any]:
        """One method call; returns [responseName, arguments]."""
        response = self.request([[name, args, "c0"]], using)["methodResponses"]
        assert len(response) == 1, response
        return response[0][:2]

    def ok(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """One method call that must succeed; returns its arguments."""
        rname, rargs = self.call(name, args)
        assert rname == name, rargs
        return rargs


@dataclass
class Server:
    base: str
    data: Path
    process: subprocess.Popen[bytes]
    logfile: Any = None
    accounts: dict[str, str] = field(default_factory=dict)  # name → account id
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    clients: list[Client] = field(default_factory=list)

    def client(self, name: str) -> Client:
        return self.client_with((name, self.passwords[name]))

    def client_with(self, auth: Any) -> Client:
        """A client with (name, password) for Basic, or a token string for Bearer; closed when
        the server stops."""
        client = Client(self.base, auth)
        self.clients.append(client)
        return client

    def log(self) -> str:
        return (self.data / "server.log").read_text()


def start_server(
    data: Path,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    scheme: str = "http",
) -> Server:
    """Start `jmapd serve` on a free port; `args` are extra command-line flags (e.g. --tls-cert,
    --tls-key with scheme "https", whose self-signed certificate the probe does not verify)."""
    port = free_port()
    environ = dict(os.environ)
    environ.update(LIMITS)
    environ["JMAPD_EXTRA_MODULES"] = "engine_types"
    environ.update(database_env(data))
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), environ.get("PYTHONPATH")]))
    environ.update(env or {})
    log = open(data / "server.log", "wb")  # noqa: SIM115 (lives as long as the process)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jmapd.cli",
            "serve",
            "--data",
            str(data),
            "--listen",
            f"127.0.0.1:{port}",
            *(args or []),
        ],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            raise AssertionError("jmapd exited: " + (data / "server.log").read_text())
        try:
            with httpx.Client(verify=scheme == "http") as probe:
                ready = probe.get(base + "/.well-known/jmap").status_code == 307
            if ready:
                return Server(base, data, process, log)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    log.close()
    raise AssertionError("jmapd did not start: " + (data / "server.log").read_text())


def stop_server(server: Server) -> None:
    for client in server.clients:
        client.http.close()
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    server.logfile.close()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The storage backend of the servers this test starts: every server test runs on each."""
    DATABASES.backend = request.param
    yield request.param
    DATABASES.drop_all()


@pytest.fixture(scope="session")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("jmapd")
    passwords = {
        "alice@example.com": "alice-secret",
        "bob@example.com": "bob-secret",
        "carol@example.com": "carol-secret",
    }
    for name, password in passwords.items():
        jmapd(data, "account", "add", name, "--password", password)
    # alice may use bob's account fully and carol's read-only.
    jmapd(data, "account", "grant", "bob@example.com", "alice@example.com")
    jmapd(data, "account", "grant", "carol@example.com", "alice@example.com", "--read-only")
    srv = start_server(data)
    for line in jmapd(data, "account", "list").splitlines():
        account_id, name = line.split(" ", 1)
        srv.accounts[name] = account_id
    srv.passwords = passwords
    srv.tokens["read-only"] = jmapd(
        data, "token", "create", "alice@example.com", "--name", "ro", "--read-only"
    ).strip()
    srv.tokens["full"] = jmapd(data, "token", "create", "alice@example.com", "--name", "rw").strip()
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def alice(server: Server) -> Client:
    return server.client("alice@example.com")


@pytest.fixture(scope="session")
def bob(server: Server) -> Client:
    return server.client("bob@example.com")


@pytest.fixture(scope="session")
def ids(server: Server) -> dict[str, str]:
    """Account ids by short name: alice, bob, carol."""
    return {name.split("@")[0]: account_id for name, account_id in server.accounts.items()}


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler for the tests' own HTTP peers, which logs nothing."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_http(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A peer over HTTP (a push service, a web page's origin) on a free loopback port, served
    in the background: the server (shutdown() and server_close() it) and its origin."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
