"""Issue 10, the operator's experience: every bad argument or setting of the command line is
one line naming the problem and exit code 2, never a traceback; a port in use, an
unreachable database, an empty password or an unconfirmed removal are refused clearly; every
command says what it did."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from jmapd import __version__
from tests.conftest import Server, free_port, jmapd
from tests.test_cli import cli, run

pytestmark = pytest.mark.usefixtures("backend")


def one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("jmapd: "), result.stderr
    for text in expected:
        assert text in result.stderr, (text, result.stderr)


def serve(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`jmapd serve` that must fail before it serves (a 10 s timeout says it did not)."""
    return subprocess.run(
        [sys.executable, "-m", "jmapd.cli", "serve", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def an_address_this_machine_lacks() -> str:
    for candidate in ("10.254.253.252", "192.0.2.77", "198.51.100.9"):
        with socket.socket() as probe:
            try:
                probe.bind((candidate, 0))
            except OSError:
                return candidate
    raise AssertionError("every candidate address is this machine's")


def test_bad_serve_arguments(tmp_path: Path) -> None:
    """Issue 10 item 12: each bad argument is one line naming it, exit code 2."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    port = str(free_port())
    cases: list[tuple[list[str], str]] = [
        (["--listen", "nohostport"], "--listen 'nohostport': expected HOST:PORT"),
        (["--listen", "127.0.0.1:"], "is not a port number"),
        (["--listen", "127.0.0.1:99999"], "'99999' is not a port number (1-65535)"),
        (["--listen", "127.0.0.1:http"], "is not a port number"),
        (["--listen", "no-such-host.invalid:8080"], "cannot resolve 'no-such-host.invalid'"),
        (["--listen", f"{an_address_this_machine_lacks()}:{port}"], "this machine has no address"),
        (["--log-level", "loud"], "--log-level 'loud': expected one of"),
        (["--workers", "0"], "--workers: workers: at least 1, or auto"),
        (["--workers", "many"], "--workers"),
        (["--tls-cert", str(cert)], "--tls-cert needs --tls-key too"),
        (["--tls-key", str(cert)], "--tls-key needs --tls-cert too"),
        (["--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(cert)],
         f"--tls-cert {tmp_path / 'no.pem'}: no such file"),
        (["--tls-cert", str(cert), "--tls-key", str(tmp_path / "no.key")],
         f"--tls-key {tmp_path / 'no.key'}: no such file"),
        (["--tls-cert", str(cert), "--tls-key", str(cert)], "--tls-cert"),
    ]  # fmt: skip
    for args, expected in cases:
        one_line_error(serve(tmp_path / "data", "--listen", f"127.0.0.1:{port}", *args), expected)
    for data, expected in (
        (a_file, "is a file, not a directory"),
        (tmp_path / "missing" / "data", f"{tmp_path / 'missing'} does not exist"),
        (Path("/proc/jmapd-data"), "cannot create it"),
        (Path("/proc"), "cannot write in it"),
    ):
        one_line_error(serve(data, "--listen", f"127.0.0.1:{port}"), f"--data {data}", expected)


def test_listen_takes_a_host_name(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jmapd.cli", "serve", "--data", str(tmp_path),
         "--listen", f"localhost:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://localhost:{port}/.well-known/jmap")
                assert r.status_code == 307
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("no server on localhost")
    finally:
        process.terminate()
        process.wait(10)


def test_a_second_server_on_a_port_in_use_fails(server: Server, tmp_path: Path) -> None:
    """Issue 10 item 13: a second server on a port in use shared it, and requests were split
    between two servers with different data at random."""
    listen = server.base.removeprefix("http://")
    one_line_error(
        serve(tmp_path, "--listen", listen), f"--listen {listen}: address already in use"
    )


def test_an_unreachable_database_is_a_clear_error_after_a_bounded_wait(tmp_path: Path) -> None:
    """Issue 10 item 14: an unreachable PostgreSQL was retried forever."""
    url = f"postgresql://jmapd:a-secret-password@127.0.0.1:{free_port()}/mail"
    started = time.monotonic()
    result = cli("account", "list", "--data", str(tmp_path), "--database", url,
                 env={"JMAPD_DATABASE_WAIT": "2"})  # fmt: skip
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"jmapd: cannot reach PostgreSQL at 127.0.0.1:{url.split(':')[3]}"
    )
    assert "a-secret-password" not in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_an_empty_password_is_refused(tmp_path: Path) -> None:
    """Issue 10 item 15: with no --password and no terminal, add and passwd set an empty
    password, which then logged in."""
    for args, stdin in (
        (("account", "add", "nopw@example.com"), ""),
        (("account", "add", "nopw@example.com"), "\n"),
        (("account", "add", "nopw@example.com", "--password", ""), None),
    ):
        one_line_error(run(tmp_path, *args, input=stdin), "no password given")
    assert "nopw@example.com" not in jmapd(tmp_path, "account", "list")
    jmapd(tmp_path, "account", "add", "haspw@example.com", "--password", "a-password")
    one_line_error(run(tmp_path, "account", "passwd", "haspw@example.com", input=""),
                   "no password given")  # fmt: skip


@pytest.mark.parametrize(
    "name", ["not an address", "nobody", "@example.com", "x@", "a b@example.com", "x<y>@z"]
)
def test_account_names_are_addresses(tmp_path: Path, name: str) -> None:
    one_line_error(run(tmp_path, "account", "add", name, "--password", "pw"),
                   "is not an address")  # fmt: skip


def test_tokens_are_listed_without_their_secrets(tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "lis@example.com", "--password", "pw")
    phone = jmapd(tmp_path, "token", "create", "lis@example.com", "--name", "phone").strip()
    jmapd(tmp_path, "token", "create", "lis@example.com", "--name", "backup", "--read-only")
    lines = jmapd(tmp_path, "token", "list", "lis@example.com").splitlines()
    assert [line.split()[:2] for line in lines] == [["backup", "read-only"], ["phone", "full"]]
    assert all(len(line.split()) == 3 and line.split()[2].endswith("Z") for line in lines)
    assert phone not in "\n".join(lines)


def test_every_command_says_what_it_did(tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "own@example.com", "--password", "pw")
    jmapd(tmp_path, "account", "add", "use@example.com", "--password", "pw")
    result = run(tmp_path, "token", "create", "own@example.com", "--name", "t")
    assert result.returncode == 0 and result.stdout.startswith("jmapd_")
    assert result.stderr == "jmapd: created token t for own@example.com\n"
    assert jmapd(tmp_path, "token", "revoke", "own@example.com", "--name", "t") == (
        "jmapd: revoked token t of own@example.com\n"
    )
    assert jmapd(tmp_path, "account", "grant", "own@example.com", "use@example.com") == (
        "jmapd: use@example.com may now use own@example.com's account fully\n"
    )


def test_version() -> None:
    result = cli("--version")
    assert (result.returncode, result.stdout) == (0, f"jmapd {__version__}\n")


def test_an_unknown_command_or_flag_is_one_line(tmp_path: Path) -> None:
    one_line_error(cli("frobnicate"), "invalid choice")
    one_line_error(cli("account", "add"), "the following arguments are required: address")
    one_line_error(cli("dkim", "generate"), "the following arguments are required: domain")
    one_line_error(cli("dkim", "generate", "not a domain"), "'not a domain' is not a domain name")
    one_line_error(cli("serve", "--no-such-flag"), "unrecognized arguments: --no-such-flag")
