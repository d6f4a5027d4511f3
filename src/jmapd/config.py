"""One configuration schema: it drives the TOML file, the JMAPD_* environment, the CLI flags
and the generated reference in docs/configuration.md.

Precedence: defaults < file < environment < flags.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: Any
    help: str
    flag: bool = False  # also offered as a command-line flag (--name-with-dashes)
    # A value's own reading (instead of `type`'s), raising ValueError, and its name.
    parse: Callable[[Any], Any] | None = None
    type_name: str = ""

    @property
    def env(self) -> str:
        return "JMAPD_" + self.name.upper()

    @property
    def cli(self) -> str:
        return "--" + self.name.replace("_", "-")


SCHEMA: tuple[Option, ...] = (
    Option("data", str, "./data", "Data directory: the SQLite database and the blob files.", True),
    Option(
        "database",
        str,
        "",
        "Database URL: empty for SQLite in the data directory, or postgresql://… for "
        "PostgreSQL (several nodes may share it).",
        True,
    ),
    Option(
        "database_wait",
        int,
        30,
        "Seconds to wait for an unreachable PostgreSQL at start before giving up.",
    ),
    Option(
        "lock_timeout",
        int,
        30,
        "Seconds a write waits for the database lock other writers hold; then the method "
        "answers serverUnavailable (HTTP 503 for an upload): the client may try again.",
    ),
    Option(
        "blob_store",
        str,
        "auto",
        "Where blob bytes live: file (the blob directory), postgresql (the database's "
        "blob_data table), s3 (an S3-compatible bucket: the s3_* options) or auto: "
        "postgresql when the database is and blob_dir is not set, else file.",
    ),
    Option("s3_bucket", str, "", "blob_store s3: the bucket (it must exist)."),
    Option("s3_prefix", str, "jmapd", "blob_store s3: the prefix of every key."),
    Option(
        "s3_endpoint",
        str,
        "",
        "blob_store s3: the endpoint URL (MinIO, Garage, …); empty for AWS.",
    ),
    Option("s3_region", str, "", "blob_store s3: the region; empty for boto3's default."),
    Option(
        "s3_access_key",
        str,
        "",
        "blob_store s3: the access key id; empty for boto3's own (AWS_ACCESS_KEY_ID, roles).",
    ),
    Option(
        "s3_secret_key",
        str,
        "",
        "blob_store s3: the secret key; empty for boto3's own (AWS_SECRET_ACCESS_KEY).",
    ),
    Option(
        "blob_dir",
        str,
        "",
        "Directory for blob files (blob_store file); empty means DATA/blobs. Set with a "
        "PostgreSQL database, it keeps blobs in files (which nodes must then share).",
        True,
    ),
    Option("listen", str, "127.0.0.1:8080", "HOST:PORT the HTTP server listens on.", True),
    Option(
        "workers",
        str,
        "auto",
        "Number of server worker processes; auto: one per CPU. Each costs about 100 MB.",
        True,
        parse=lambda value: _worker_count(value),
        type_name="int or auto",
    ),
    Option(
        "max_open_requests",
        int,
        4096,
        "Requests one worker process serves at once, open EventSource streams included (a "
        "WebSocket needs one only for its handshake); more wait in the listen queue. About "
        "60 KB per open stream.",
    ),
    Option(
        "engine_threads",
        int,
        4,
        "Threads per worker that run method calls (the rest wait their turn).",
    ),
    Option(
        "tls_cert", str, "", "PEM certificate file; with tls_key turns on TLS and HTTP/2.", True
    ),
    Option("tls_key", str, "", "PEM private key file for tls_cert.", True),
    Option(
        "public_url",
        str,
        "",
        "Public base URL (e.g. https://mail.example.com) for the URLs in the session object; "
        "empty means the request's scheme and Host.",
    ),
    Option(
        "trusted_proxies",
        list,
        [],
        "Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-Proto and "
        "X-Forwarded-Host are believed when public_url is empty; from anyone else they are "
        "ignored.",
    ),
    Option("max_size_upload", int, 50_000_000, "Session limit maxSizeUpload, in octets."),
    Option("max_concurrent_upload", int, 4, "Session limit maxConcurrentUpload, per user."),
    Option("max_size_request", int, 10_000_000, "Session limit maxSizeRequest, in octets."),
    Option("max_concurrent_requests", int, 8, "Session limit maxConcurrentRequests, per user."),
    Option("max_calls_in_request", int, 32, "Session limit maxCallsInRequest."),
    Option(
        "request_body_timeout",
        int,
        60,
        "Seconds a request's or an upload's body may take to arrive (408 after that).",
    ),
    Option("max_event_sources", int, 16, "Event source streams a user may hold open at once."),
    Option("max_objects_in_get", int, 500, "Session limit maxObjectsInGet."),
    Option("max_objects_in_set", int, 500, "Session limit maxObjectsInSet."),
    Option("max_changes", int, 5000, "Most changes one /changes or /queryChanges call returns."),
    Option("upload_ttl", int, 86400, "Seconds an uploaded blob lives unless something uses it."),
    Option(
        "tombstone_ttl", int, 30 * 86400, "Seconds destroyed records are remembered for /changes."
    ),
    Option(
        "push_poll_interval",
        int,
        5,
        "SQLite: seconds between reads of the states of the accounts a worker has listeners "
        "for, catching what other processes (the command line) changed; the workers of one "
        "data directory tell each other at once.",
    ),
    Option(
        "housekeeping_interval",
        int,
        600,
        "Seconds between runs that expire unused uploads, remove the files of blobs nobody "
        "references any more, and forget old tombstones.",
    ),
    Option(
        "blob_grace",
        int,
        3600,
        "Seconds a blob file nobody references is kept after it was last written (an upload "
        "of the same bytes may be about to use it) before housekeeping removes it.",
    ),
    Option(
        "blob_sweep_interval",
        int,
        86400,
        "Seconds between sweeps of the whole blob directory for files no row references "
        "(left by failed or killed writes).",
    ),
    Option("auth_cache_ttl", int, 300, "Seconds a verified credential is remembered in memory."),
    Option(
        "auth_failure_cache_ttl",
        int,
        60,
        "Seconds credentials that failed fail again at once, without a password hash.",
    ),
    Option(
        "max_concurrent_hashing",
        int,
        2,
        "Password hashes (argon2id, 64 MiB each) checked at once per worker process.",
    ),
    Option(
        "max_login_queue",
        int,
        64,
        "Logins that may wait for a password check per worker; more are answered 429.",
    ),
    Option(
        "login_failures_free",
        int,
        10,
        "Failed logins a client address, or a username, may make within 15 minutes before "
        "each further attempt waits a back-off (429 with Retry-After) that doubles each time.",
    ),
    Option("login_backoff_max", int, 900, "The longest back-off after failed logins, in seconds."),
    Option(
        "credential_check_interval",
        int,
        10,
        "Seconds between checks that an open EventSource stream's or WebSocket's credential "
        "is still valid (not revoked, password unchanged, access token not expired); the "
        "stream ends (the socket closes with 1008) when it is not.",
    ),
    Option(
        "access_token_ttl",
        int,
        3600,
        "Seconds a browser access token (POST /jmap/access-token, docs/clients.md) is valid for.",
    ),
    Option(
        "lmtp",
        str,
        "",
        "Where to take mail in over LMTP (RFC 2033) from an MTA such as Postfix: HOST:PORT, "
        "or a Unix socket path (unix:/path); empty: no LMTP.",
        True,
    ),
    Option(
        "smtp",
        str,
        "",
        "Where to take mail in over plain SMTP (RFC 5321) from a local relay that cannot "
        "speak LMTP: HOST:PORT, or a Unix socket path (unix:/path); empty: no SMTP. No "
        "authentication, no TLS: listen on loopback or a trusted network only.",
        True,
    ),
    Option(
        "max_message_size",
        int,
        50_000_000,
        "The largest message LMTP and SMTP accept, in octets (announced as SIZE).",
    ),
    Option(
        "duplicate_suppression",
        bool,
        False,
        "Deliver a message over LMTP or SMTP whose Message-ID is in the recipient's Inbox "
        "already no second time (it is acknowledged, not stored): against the duplicates "
        "an MTA's retry can make.",
    ),
    Option(
        "dkim_selector",
        str,
        "jmapd",
        "The DKIM selector `jmapd dkim generate` names a new key with by default, and whose "
        "key signs a domain's mail when the domain has several (else its oldest key signs).",
    ),
    Option(
        "smarthost",
        str,
        "",
        "HOST:PORT of the SMTP relay that sends what users submit (EmailSubmission, vacation "
        "replies); empty: jmapd delivers to each recipient domain's MX itself.",
        True,
    ),
    Option("smarthost_user", str, "", "The user name jmapd authenticates to the smarthost with."),
    Option(
        "smarthost_password",
        str,
        "",
        "The password for smarthost_user (SMTP AUTH, sent only over TLS unless smarthost_tls "
        "is none).",
    ),
    Option(
        "smarthost_tls",
        str,
        "auto",
        "TLS to the smarthost: auto (STARTTLS when offered), starttls (required), tls (TLS "
        "from the start, port 465) or none.",
    ),
    Option(
        "send_delay",
        int,
        0,
        "Seconds a submission waits before it is sent, during which the client may cancel it "
        "(undoStatus canceled); FUTURERELEASE (HOLDFOR/HOLDUNTIL) holds it longer.",
    ),
    Option("max_recipients", int, 100, "The most recipients one EmailSubmission may have."),
    Option(
        "queue_retry",
        int,
        60,
        "Seconds before the first retry of a delivery that failed for a while (4xx, no "
        "connection); each further retry waits twice as long, up to 4 hours.",
    ),
    Option(
        "queue_lifetime",
        int,
        5 * 86400,
        "Seconds the outbound queue keeps trying; then the sender gets a DSN (RFC 3464).",
    ),
    Option("mx_port", int, 25, "The port jmapd connects to on a recipient domain's MX."),
    Option(
        "dns_server",
        str,
        "",
        "HOST:PORT of the DNS server MX records are asked of; empty: the system's resolvers.",
    ),
    Option(
        "max_push_subscriptions",
        int,
        16,
        "PushSubscriptions a user may have, and may create in an hour (RFC 8620 §8.7).",
    ),
    Option(
        "push_subscription_days",
        int,
        7,
        "The longest a PushSubscription lives (its expires is bounded to this many days).",
    ),
    Option(
        "push_interval",
        int,
        1,
        "Seconds between two Web Push deliveries to one subscription; changes meanwhile "
        "are coalesced into the next (a 429 from the push service doubles it for a while).",
    ),
    Option("push_timeout", int, 10, "Seconds a Web Push delivery may take."),
    Option(
        "push_contact",
        str,
        "mailto:postmaster@localhost",
        "The contact (mailto: or https:) in the VAPID claims sent to push services (RFC 8292 sub).",
    ),
    Option(
        "push_allow_loopback",
        bool,
        False,
        "Let PushSubscriptions name http:// and loopback or private-network URLs: for tests "
        "and local development only (otherwise only https:// URLs that resolve to public "
        "addresses are contacted).",
    ),
    Option("log_level", str, "info", "Logging level: debug, info, warning or error.", True),
    Option(
        "access_log",
        bool,
        True,
        "Log one JSON line per HTTP request (logger jmapd.access: client, method, path without "
        "query, status, duration, bytes, user, JMAP method calls; never bodies or secrets).",
    ),
    Option(
        "metrics_listen",
        str,
        "",
        "HOST:PORT of a separate listener for Prometheus metrics at /metrics; empty: off.",
        True,
    ),
    Option(
        "extra_modules",
        list,
        [],
        "Python modules imported at start-up that register extra data types or capabilities.",
    ),
)

OPTIONS = {o.name: o for o in SCHEMA}


@dataclass(frozen=True)
class Config:
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data"])


class ConfigError(Exception):
    pass


def host_name(config: Config) -> str:
    """The server's name in mail (generated Message-IDs, the LMTP and SMTP greeting): the public
    URL's host, else this machine's."""
    return urlsplit(str(config.public_url)).hostname or socket.getfqdn() or "jmapd"


def _worker_count(value: Any) -> str | int:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("expected a number or auto")
    count = int(value)
    if count < 1:
        raise ValueError("at least 1, or auto (one per CPU)")
    return count


def _coerce(option: Option, value: Any, origin: str) -> Any:
    try:
        if option.parse is not None:
            return option.parse(value)
        if option.type is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
            raise ValueError("expected a list of strings")
        if option.type is bool:
            if isinstance(value, bool):
                return value
            words = {"true": True, "yes": True, "on": True, "1": True,
                     "false": False, "no": False, "off": False, "0": False}  # fmt: skip
            if isinstance(value, str) and value.strip().lower() in words:
                return words[value.strip().lower()]
            raise ValueError("expected true or false")
        # Strings (environment, flags) are converted; a typed TOML value must have the type.
        if (option.type is int and isinstance(value, bool)) or not isinstance(
            value, (str, option.type)
        ):
            kind = {int: "an integer", str: "a string"}.get(option.type, option.type.__name__)
            raise ValueError(f"expected {kind}")
        return option.type(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{origin}: {option.name}: {e}") from None


def load(
    file: str | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Resolve the configuration: defaults, TOML file, JMAPD_* variables, then flags."""
    environ = dict(os.environ) if environ is None else environ
    values = {o.name: o.default for o in SCHEMA}
    file = file or environ.get("JMAPD_CONFIG")
    if file:
        try:
            data = tomllib.loads(Path(file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"{file}: {e}") from None
        for key, value in data.items():
            if key not in OPTIONS:
                raise ConfigError(f"{file}: unknown option {key!r}")
            values[key] = _coerce(OPTIONS[key], value, file)
    for option in SCHEMA:
        if option.env in environ:
            values[option.name] = _coerce(option, environ[option.env], option.env)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(OPTIONS[key], value, OPTIONS[key].cli)
    return Config(values)


def reference_markdown() -> str:
    """The configuration reference, generated from SCHEMA (docs/configuration.md)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `src/jmapd/config.py` by `jmapd config-reference`; do not edit by hand.",
        "",
        "Every option can be set in the TOML file given with `--config` (or `JMAPD_CONFIG`), in",
        "the environment as `JMAPD_<NAME>`, and, where a flag is shown, on the command line.",
        "Later sources win: defaults < file < environment < flags.",
        "",
        "| option | environment | flag | type | default | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for o in SCHEMA:
        flag = f"`{o.cli}`" if o.flag else ""
        default = f"`{o.default!r}`" if o.default not in ("", []) else "(empty)"
        kind = o.type_name or o.type.__name__
        cells = [f"`{o.name}`", f"`{o.env}`", flag, kind, default, o.help]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
