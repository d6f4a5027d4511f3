"""The `jmapd` command: serve, account, token, migrate, reindex, config-reference."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import orjson

from . import config as configuration
from .passwords import hash_password, new_token, token_hash
from .protocol.registry import REGISTRY
from .store import open_store as open_configured_store
from .store.sql import SQLStore
from .types import load as load_types

DEMO_ACCOUNT = "demo@localhost"
DEMO_FILE = "demo-credentials.txt"


def add_config_flags(parser: argparse.ArgumentParser, serve: bool = False) -> None:
    parser.add_argument("--config", help="TOML configuration file (or JMAPD_CONFIG)")
    for option in configuration.SCHEMA:
        if option.flag and (serve or option.name in ("data", "database")):
            parser.add_argument(
                option.cli, dest=option.name, type=option.type, default=None, help=option.help
            )


def load_config(args: argparse.Namespace) -> configuration.Config:
    overrides = {o.name: getattr(args, o.name, None) for o in configuration.SCHEMA if o.flag}
    config = configuration.load(args.config, overrides)
    load_types(config.extra_modules)
    return config


def add_account(store: SQLStore, name: str, password: str) -> Any:
    """Create an account with everything a new account starts with (e.g. its mailboxes)."""
    account = store.create_account(name, hash_password(password))
    REGISTRY.provision(store, account.id)
    return account


def open_store(config: configuration.Config) -> SQLStore:
    try:
        return open_configured_store(config)
    except ValueError as e:
        raise SystemExit(f"jmapd: {e}") from None


def read_password(given: str | None, confirm: bool = True) -> str:
    if given is not None:
        return given
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != password:
        raise SystemExit("jmapd: the passwords differ")
    return password


def ensure_demo(store: SQLStore, data_dir: Path, url: str) -> None:
    """On a first start with no accounts, make a demo account; print how to use it."""
    creds = data_dir / DEMO_FILE
    if not store.list_accounts():
        password = secrets.token_urlsafe(12)
        add_account(store, DEMO_ACCOUNT, password)
        creds.write_text(f"{DEMO_ACCOUNT}:{password}\n")
        creds.chmod(0o600)
    if creds.exists() and store.account_by_name(DEMO_ACCOUNT):
        user = creds.read_text().strip()
        print(f"jmapd: demo account {user.split(':', 1)[0]}  password {user.split(':', 1)[1]}")
        print(f"jmapd: try  curl -u '{user}' {url}/jmap/session")


def cmd_serve(args: argparse.Namespace) -> int:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels

    from .http.session import trusted_networks

    config = load_config(args)
    trusted_networks(config.trusted_proxies)  # a bad one stops the start, not each worker
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config)
    host, _, port = str(config.listen).rpartition(":")
    tls = bool(config.tls_cert and config.tls_key)
    url = f"{'https' if tls else 'http'}://{host or '127.0.0.1'}:{port}"
    ensure_demo(store, config.data_dir, url)
    reindex(store, config, only_incomplete=True)
    store.close()
    os.environ["JMAPD_RESOLVED_CONFIG"] = orjson.dumps(config.values).decode()
    print(f"jmapd: serving {url}/ from {config.data_dir}", flush=True)
    Granian(
        "jmapd.http.asgi:app",
        address=host.strip("[]") or "127.0.0.1",
        port=int(port),
        interface=Interfaces.ASGI,
        workers=int(config.workers),
        factory=True,
        http=HTTPModes.auto,
        ssl_cert=Path(config.tls_cert) if tls else None,
        ssl_key=Path(config.tls_key) if tls else None,
        log_level=LogLevels(str(config.log_level)),
    ).serve()
    return 0


def _account_or_exit(store: SQLStore, name: str) -> Any:
    account = store.account_by_name(name)
    if account is None:
        raise SystemExit(f"jmapd: no account {name}")
    return account


def cmd_account(args: argparse.Namespace) -> int:
    store = open_store(load_config(args))
    if args.action == "add":
        if store.account_by_name(args.address):
            raise SystemExit(f"jmapd: account {args.address} exists")
        account = add_account(store, args.address, read_password(args.password))
        print(f"{account.id} {account.name}")
    elif args.action == "list":
        for account in store.list_accounts():
            print(f"{account.id} {account.name}")
    elif args.action == "remove":
        store.remove_account(_account_or_exit(store, args.address).id)
    elif args.action == "passwd":
        account = _account_or_exit(store, args.address)
        store.set_password(account.id, hash_password(read_password(args.password)))
    elif args.action == "grant":
        owner = _account_or_exit(store, args.address)
        user = _account_or_exit(store, args.user)
        store.grant(owner.id, user.id, args.read_only)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    store = open_store(load_config(args))
    account = _account_or_exit(store, args.address)
    if args.action == "create":
        token = new_token()
        try:
            store.create_token(token_hash(token), account.id, args.name, args.read_only)
        except KeyError:  # token names are unique per account
            raise SystemExit(f"jmapd: token {args.name} exists for {args.address}") from None
        print(token)
        return 0
    if not store.revoke_token(account.id, args.name):
        raise SystemExit(f"jmapd: no token {args.name} for {args.address}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    config = load_config(args)
    store = open_store(config)
    version = store.migrate()
    for account in store.list_accounts():
        REGISTRY.provision(store, account.id)
    print(f"jmapd: schema version {version}")
    reindex(store, config, only_incomplete=True)
    return 0


def _progress(name: str) -> Any:
    """A progress bar on stderr for one account."""

    def show(done: int, total: int) -> None:
        filled = 30 * done // max(total, 1)
        end = "\n" if done == total else ""
        bar = "#" * filled + "." * (30 - filled)
        sys.stderr.write(f"\r  {name:<30} [{bar}] {done}/{total}{end}")
        sys.stderr.flush()

    return show


def reindex(
    store: SQLStore, config: configuration.Config, names: list[str] | None = None,
    only_incomplete: bool = False,
) -> int:  # fmt: skip
    """Rebuild the message index of the named accounts (all when None) from their messages;
    with only_incomplete, only of accounts whose index lacks messages (e.g. after upgrading
    to a version that indexes more)."""
    from .store.blobs import FileBlobStore
    from .types.email.index import reindex_account

    blobs = FileBlobStore(Path(config.blob_dir) if config.blob_dir else config.data_dir / "blobs")
    accounts = (
        store.list_accounts() if names is None else [_account_or_exit(store, n) for n in names]
    )
    count = 0
    for account in accounts:
        with store.write(account.id) as txn:
            if only_incomplete and txn.unindexed_messages() == 0:
                continue
            count += reindex_account(blobs, txn, _progress(account.name))
    return count


def cmd_reindex(args: argparse.Namespace) -> int:
    config = load_config(args)
    store = open_store(config)
    count = reindex(store, config, args.address or None)
    print(f"jmapd: indexed {count} messages")
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    sys.stdout.write(configuration.reference_markdown())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jmapd", description="A JMAP server.")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    add_config_flags(serve, serve=True)
    serve.set_defaults(run=cmd_serve)

    account = sub.add_parser("account", help="manage accounts")
    actions = account.add_subparsers(dest="action", required=True)
    for action, help in [
        ("add", "create an account"),
        ("remove", "delete an account and all its data"),
        ("passwd", "set an account's password"),
        ("grant", "let USER use ADDRESS's account"),
        ("list", "list accounts"),
    ]:
        a = actions.add_parser(action, help=help)
        add_config_flags(a)
        if action != "list":
            a.add_argument("address")
        if action in ("add", "passwd"):
            a.add_argument("--password", help="the password (prompted for when absent)")
        if action == "grant":
            a.add_argument("user")
            a.add_argument("--read-only", action="store_true")
    account.set_defaults(run=cmd_account)

    token = sub.add_parser("token", help="manage API bearer tokens")
    actions = token.add_subparsers(dest="action", required=True)
    for action in ("create", "revoke"):
        t = actions.add_parser(action, help=f"{action} a token")
        add_config_flags(t)
        t.add_argument("address")
        t.add_argument("--name", default="default", help="the token's name")
        if action == "create":
            t.add_argument("--read-only", action="store_true", help="allow no writes")
    token.set_defaults(run=cmd_token)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    add_config_flags(migrate)
    migrate.set_defaults(run=cmd_migrate)
    rebuild = sub.add_parser("reindex", help="rebuild the search index from the messages")
    add_config_flags(rebuild)
    rebuild.add_argument("address", nargs="*", help="the accounts (all when none is named)")
    rebuild.set_defaults(run=cmd_reindex)
    ref = sub.add_parser("config-reference", help="print the configuration reference")
    ref.set_defaults(run=cmd_config_reference)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except configuration.ConfigError as e:
        raise SystemExit(f"jmapd: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
