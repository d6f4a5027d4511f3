"""What the command line checks before it serves or writes anything: the listen address, TLS
files, the log level, the data directory and its permissions. Each problem is one line that
names it (UsageError: exit code 2), never a traceback."""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


class UsageError(Exception):
    """A bad argument or setting: reported as one line, exit code 2."""


@dataclass(frozen=True)
class Listen:
    given: str
    host: str  # as given, for URLs
    address: str  # what it resolves to, to bind
    port: int
    family: socket.AddressFamily


def parse_listen(value: str, flag: str = "--listen") -> Listen:
    """HOST:PORT, HOST a name, an IPv4 address or an [IPv6] address (empty: 127.0.0.1)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        raise UsageError(f"{flag} {value!r}: expected HOST:PORT")
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise UsageError(f"{flag} {value!r}: {port!r} is not a port number (1-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host or "127.0.0.1"
    try:
        found = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UsageError(f"{flag} {value!r}: cannot resolve {host!r} ({e})") from None
    family, _, _, _, sockaddr = found[0]
    return Listen(value, host, str(sockaddr[0]), int(port), family)


def check_free(listen: Listen, flag: str = "--listen") -> None:
    """The address can be listened on, and nobody listens there yet: a second server on a
    port in use must fail, not share it (the HTTP server binds with SO_REUSEPORT)."""
    with socket.socket(listen.family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no use
        try:
            probe.bind((listen.address, listen.port))
        except OSError as e:
            reason = {
                errno.EADDRINUSE: "address already in use",
                errno.EADDRNOTAVAIL: f"this machine has no address {listen.address}",
                errno.EACCES: "permission denied (ports below 1024 need privileges)",
            }.get(e.errno or 0, e.strerror or str(e))
            raise UsageError(f"{flag} {listen.given}: {reason}") from None


def check_log_level(level: str) -> None:
    if str(level).lower() not in LOG_LEVELS:
        raise UsageError(f"--log-level {level!r}: expected one of {', '.join(LOG_LEVELS)}")


def worker_count(value: str | int) -> int:
    """The `workers` setting (config.py checked it): auto is one per CPU."""
    return (os.cpu_count() or 1) if value == "auto" else int(value)


def check_tls(cert: str, key: str) -> None:
    if bool(cert) != bool(key):
        given, missing = ("--tls-cert", "--tls-key") if cert else ("--tls-key", "--tls-cert")
        raise UsageError(f"{given} needs {missing} too")
    if not cert:
        return
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise UsageError(f"{flag} {path}: no such file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise UsageError(f"--tls-cert {cert} / --tls-key {key}: {e.strerror or e}") from None


def prepare_directory(path: Path, flag: str) -> None:
    """A private directory the server can write: made (mode 0700) if its parent exists."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a directory")
    if not path.exists():
        if not path.parent.is_dir():
            raise UsageError(f"{flag} {path}: {path.parent} does not exist")
        try:
            path.mkdir(mode=PRIVATE_DIR)
        except OSError as e:
            raise UsageError(f"{flag} {path}: cannot create it ({e.strerror})") from None
    probe = path / f".jmapd-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot write in it ({e.strerror})") from None


def tighten(directory: Path, deep: bool = False) -> int:
    """Make a directory 0700 and the files in it 0600 (only the top level, or with `deep`
    everything below); return how many were loosened before."""
    changed = 0
    entries = directory.rglob("*") if deep else directory.iterdir()
    for path in [directory, *entries]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode) or not mode & 0o077:
            continue
        path.chmod(PRIVATE_DIR if stat.S_ISDIR(mode) else PRIVATE_FILE)
        changed += 1
    return changed


def make_private(data_dir: Path, blob_dir: Path) -> None:
    """Every file the server writes is readable by its user alone (umask 077), and what an
    older version left readable by others (the database with its password hashes, the mail)
    is tightened, with a line saying so. A blob directory readable by others is walked once
    to tighten every blob in it."""
    os.umask(0o077)
    loose_blobs = blob_dir.is_dir() and blob_dir.stat().st_mode & 0o077
    changed = tighten(blob_dir, deep=True) if loose_blobs else 0
    changed += tighten(data_dir)
    if changed:
        print(f"jmapd: tightened permissions of {changed} files and directories (were "
              f"readable by others) in {data_dir}", file=sys.stderr, flush=True)  # fmt: skip
