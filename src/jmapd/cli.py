"""The `jmapd` command: serve, account, token, migrate, reindex, dkim, contacts,
config-reference.

Every command says what it did; every bad argument or setting is one line naming it and exit
code 2 (startup.UsageError), never a traceback."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import orjson

from . import __version__
from . import config as configuration
from .passwords import hash_password, new_token, token_hash
from .protocol.registry import REGISTRY
from .protocol.values import utc_date
from .startup import (
    UsageError,
    check_free,
    check_log_level,
    check_tls,
    make_private,
    parse_listen,
    prepare_directory,
    worker_count,
)
from .store import blob_directory, open_blobs
from .store import open_store as open_configured_store
from .store.base import BlobStore
from .store.blobs import collect_orphans
from .store.sql import SQLStore
from .types import load as load_types

DEMO_ACCOUNT = "demo@localhost"
DEMO_FILE = "demo-credentials.txt"
# An account's name: an address, local@domain, without white space, controls or <>.
ADDRESS = re.compile(r"[^\s@<>\x00-\x1f\x7f]{1,64}@[^\s@<>\x00-\x1f\x7f]{1,253}")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line (the usage is in --help), exit code 2."""
        self.exit(2, f"jmapd: {message} (see {self.prog} --help)\n")


def add_config_flags(parser: argparse.ArgumentParser, serve: bool = False) -> None:
    parser.add_argument("--config", help="TOML configuration file (or JMAPD_CONFIG)")
    for option in configuration.SCHEMA:
        if option.flag and (serve or option.name in ("data", "database")):
            parser.add_argument(
                option.cli, dest=option.name, type=str if option.parse else option.type,
                default=None, help=option.help,
            )  # fmt: skip


def load_config(args: argparse.Namespace) -> configuration.Config:
    overrides = {o.name: getattr(args, o.name, None) for o in configuration.SCHEMA if o.flag}
    config = configuration.load(args.config, overrides)
    load_types(config.extra_modules)
    return config


def open_store(config: configuration.Config) -> SQLStore:
    """The store, in a private data directory (made if need be)."""
    prepare_directory(config.data_dir, "--data")
    make_private(config.data_dir, blob_directory(config))
    try:
        return open_configured_store(config)
    except ValueError as e:
        raise UsageError(str(e)) from None


def blobs_of(config: configuration.Config, store: SQLStore) -> BlobStore:
    try:
        return open_blobs(config, store)
    except ValueError as e:
        raise UsageError(str(e)) from None


def add_account(store: SQLStore, name: str, password: str) -> Any:
    """Create an account with everything a new account starts with (e.g. its mailboxes)."""
    account = store.create_account(name, hash_password(password))
    REGISTRY.provision(store, account.id)
    return account


def read_password(given: str | None, confirm: bool = True) -> str:
    """--password, else asked twice on a terminal, else one line of stdin; never empty (an
    empty password would let anyone in)."""
    if given is None and sys.stdin.isatty():
        given = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Again: ") != given:
            raise UsageError("the passwords differ")
    elif given is None:
        given = sys.stdin.readline().rstrip("\n")
    if not given:
        raise UsageError("no password given: use --password, a terminal, or a line on stdin")
    return given


def check_address(name: str) -> str:
    if not ADDRESS.fullmatch(name):
        raise UsageError(f"{name!r} is not an address (local@domain)")
    return name


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
    listen = parse_listen(str(config.listen))
    check_log_level(str(config.log_level))
    workers = worker_count(config.workers)
    check_tls(str(config.tls_cert), str(config.tls_key))
    trusted_networks(config.trusted_proxies)  # a bad one stops the start, not each worker
    check_free(listen)
    metrics = parse_listen(str(config.metrics_listen)) if config.metrics_listen else None
    for flag, where in (("--lmtp", str(config.lmtp)), ("--smtp", str(config.smtp))):
        if where and not where.removeprefix("unix:").startswith("/"):
            check_free(parse_listen(where, flag), flag)
    if metrics is not None:
        check_free(metrics, "--metrics-listen")
    store = open_store(config)
    blobs_of(config, store)  # a bad blob_store stops the start, not each worker
    tls = bool(config.tls_cert)
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    url = f"{'https' if tls else 'http'}://{host}:{listen.port}"
    ensure_demo(store, config.data_dir, url)
    reindex(store, config, only_incomplete=True)
    store.close()
    os.environ["JMAPD_RESOLVED_CONFIG"] = orjson.dumps(config.values).decode()
    if metrics is not None:
        # The workers count into one fresh directory (named before prometheus_client is
        # imported); this process answers /metrics with the sum.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="jmapd-metrics-")
        from .http import observe

        observe.serve_metrics(metrics.address, metrics.port)
        print(f"jmapd: metrics at http://{metrics.host}:{metrics.port}/metrics", flush=True)
    print(f"jmapd: serving {url}/ from {config.data_dir}", flush=True)
    Granian(
        "jmapd.http.asgi:app",
        address=listen.address,
        port=listen.port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        http=HTTPModes.auto,
        ssl_cert=Path(config.tls_cert) if tls else None,
        ssl_key=Path(config.tls_key) if tls else None,
        log_level=LogLevels(str(config.log_level).lower()),
        # granian's default, 1024 // workers, let a thousand idle EventSources stop a
        # worker from answering anything else.
        backpressure=int(config.max_open_requests),
        backlog=2048,
    ).serve()
    return 0


def _account(store: SQLStore, name: str) -> Any:
    account = store.account_by_name(name)
    if account is None:
        raise UsageError(f"no account {name}")
    return account


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question} Refused: confirm with --yes when not at a terminal")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise UsageError("nothing was changed")


def cmd_account(args: argparse.Namespace) -> int:
    config = load_config(args)
    store = open_store(config)
    if args.action == "add":
        name = check_address(args.address)
        if store.account_by_name(name):
            raise UsageError(f"account {name} exists")
        account = add_account(store, name, read_password(args.password))
        print(f"{account.id} {account.name}")
    elif args.action == "list":
        for account in store.list_accounts():
            print(f"{account.id} {account.name}")
    elif args.action == "remove":
        account = _account(store, args.address)
        _confirm(f"Remove {account.name} and all its mail?", args.yes)
        blob_ids = store.remove_account(account.id)
        # Its blobs no other account uses: their files go now.
        files = collect_orphans(store, blobs_of(config, store), 0, only=blob_ids)
        print(f"jmapd: removed account {account.name} and its data ({files} blob files)")
    elif args.action == "passwd":
        account = _account(store, args.address)
        store.set_password(account.id, hash_password(read_password(args.password)))
        print(f"jmapd: changed the password of {account.name}")
    elif args.action == "grant":
        owner = _account(store, args.address)
        user = _account(store, args.user)
        store.grant(owner.id, user.id, args.read_only)
        how = "read-only" if args.read_only else "fully"
        print(f"jmapd: {user.name} may now use {owner.name}'s account {how}")
    elif args.action == "alias":
        cmd_alias(store, args)
    return 0


def cmd_alias(store: SQLStore, args: argparse.Namespace) -> None:
    """Addresses mail is delivered to beside the account's own: aliases, or "@domain" for
    every address of the domain that no account or alias has (a catch-all)."""
    account = _account(store, args.address)
    if args.alias_action == "list":
        for alias in store.aliases(account.id):
            print(alias)
        return
    alias = args.alias
    if not (ADDRESS.fullmatch(alias) or ADDRESS.fullmatch("x" + alias)):
        raise UsageError(f"{alias!r} is not an address (local@domain) or a domain (@domain)")
    if args.alias_action == "add":
        try:
            store.add_alias(account.id, alias)
        except KeyError:
            raise UsageError(f"{alias} already belongs to another account") from None
        REGISTRY.provision(store, account.id)  # its default identity (types/identity.py)
        print(f"jmapd: mail to {alias.lower()} now goes to {account.name}")
    elif not store.remove_alias(account.id, alias):
        raise UsageError(f"{alias} is not an alias of {account.name}")
    else:
        REGISTRY.provision(store, account.id)
        print(f"jmapd: mail to {alias.lower()} no longer goes to {account.name}")


def cmd_token(args: argparse.Namespace) -> int:
    store = open_store(load_config(args))
    account = _account(store, args.address)
    if args.action == "create":
        token = new_token()
        try:
            store.create_token(token_hash(token), account.id, args.name, args.read_only)
        except KeyError:  # token names are unique per account
            raise UsageError(f"token {args.name} exists for {args.address}") from None
        print(token)  # alone on stdout, for scripts; what it is on stderr
        kind = "read-only " if args.read_only else ""
        print(f"jmapd: created {kind}token {args.name} for {account.name}", file=sys.stderr)
    elif args.action == "list":
        for name, read_only, created in store.list_tokens(account.id):
            print(f"{name} {'read-only' if read_only else 'full'} {utc_date(created)}")
    else:
        if not store.revoke_token(account.id, args.name):
            raise UsageError(f"no token {args.name} for {args.address}")
        print(f"jmapd: revoked token {args.name} of {account.name}")
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
    from .types.email.index import reindex_account

    blobs = blobs_of(config, store)
    accounts = store.list_accounts() if names is None else [_account(store, n) for n in names]
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


def cmd_check(args: argparse.Namespace) -> int:
    """Report every problem; with --repair, repair and check again: 0 when none is left."""
    from .check import check_all

    config = load_config(args)
    store = open_store(config)
    blobs = blobs_of(config, store)
    grace = float(config.blob_grace)
    problems = check_all(store, blobs, args.repair, grace, lambda p: print(f"  {p}"))
    if args.repair and problems:
        left = check_all(store, blobs, False, grace, lambda p: print(f"  left: {p}"))
        print(f"jmapd: repaired {len(problems) - len(left)} problems, {len(left)} left")
        return 1 if left else 0
    print(f"jmapd: {len(problems)} problems" + (" (run jmapd check --repair)" if problems else ""))
    return 1 if problems else 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Backup to, or restore from, a directory (backup.py), saying what it moved."""
    from . import backup as backups

    config = load_config(args)
    store = open_store(config)
    blobs, directory = blobs_of(config, store), Path(args.directory)

    def say(line: str) -> None:
        print(f"  {line}", file=sys.stderr)

    try:
        if args.command == "backup":
            counts, done = backups.backup(store, blobs, directory, say), "backed up"
        else:
            counts = backups.restore(store, blobs, directory, say, lambda s: reindex(s, config))
            done = "restored"
    except backups.BackupError as e:
        raise UsageError(str(e)) from None
    where = "to" if args.command == "backup" else "from"
    print(f"jmapd: {done} {counts['accounts']} accounts, {counts['records']} records and "
          f"{counts['blob files']} blob files {where} {args.directory}")  # fmt: skip
    return 0


def cmd_dkim(args: argparse.Namespace) -> int:
    """DKIM keys in the data directory (smtp/dkim.py): make one and print its DNS record, or
    list them."""
    from .smtp import dkim

    config = load_config(args)
    try:
        if args.action == "list":
            for key in dkim.keys(config):
                print(f"{key.domain} {key.selector} {key.path}")
                if args.records:
                    print(dkim.dns_record(key.domain, key.selector, key.pem))
            return 0
        domain = dkim.domain_name(args.domain)
        selector = dkim.selector_name(args.selector or str(config.dkim_selector))
        prepare_directory(config.data_dir, "--data")
        record = dkim.generate(config, domain, selector, force=args.force)
    except dkim.DKIMError as e:
        raise UsageError(str(e)) from None
    print(record)  # alone on stdout, for scripts; what it is on stderr
    path = dkim.key_directory(config) / f"{domain}.{selector}.key"
    print(f"jmapd: made a {dkim.KEY_BITS}-bit RSA key for {domain} (selector {selector}) in "
          f"{path}; publish the record above in DNS", file=sys.stderr)  # fmt: skip
    return 0


def cmd_contacts(args: argparse.Namespace) -> int:
    """Import a vCard file into an account, or export its cards (RFC 9555 conversion)."""
    from .types.contacts.transfer import export_cards, import_cards

    config = load_config(args)
    store = open_store(config)
    blobs = blobs_of(config, store)
    account = _account(store, args.account)
    if args.action == "export":
        sys.stdout.write(export_cards(store, blobs, account))
        return 0
    try:
        raw = Path(args.file).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {args.file}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # older vCard 2.1/3.0 exports

    def report(line: int, reason: str) -> None:
        sys.stderr.write(f"\njmapd: {args.file}:{line}: card rejected: {reason}\n")

    try:
        progress = _progress(account.name)
        imported, rejected = import_cards(
            config, store, blobs, account, text, args.address_book, progress, report
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"jmapd: imported {imported} cards into {account.name}, rejected {rejected}")
    return 1 if rejected and not imported else 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    sys.stdout.write(configuration.reference_markdown())
    return 0


def subcommands(
    parent: argparse.ArgumentParser | None, dest: str, commands: list[tuple[str, str]],
    group: Any = None,
) -> Iterator[tuple[str, argparse.ArgumentParser]]:  # fmt: skip
    """Each of a command's subcommands (name, help), made with the configuration flags."""
    if group is None:
        assert parent is not None
        group = parent.add_subparsers(dest=dest, required=True, parser_class=Parser)
    for name, help in commands:
        command = group.add_parser(name, help=help)
        add_config_flags(command)
        yield name, command


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="jmapd", description="A JMAP server.")
    p.add_argument("--version", action="version", version=f"jmapd {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    serve = sub.add_parser("serve", help="run the server")
    add_config_flags(serve, serve=True)
    serve.set_defaults(run=cmd_serve)

    account = sub.add_parser("account", help="manage accounts")
    actions = account.add_subparsers(dest="action", required=True, parser_class=Parser)
    for action, a in subcommands(None, "action", [
        ("add", "create an account"),
        ("remove", "delete an account and all its data"),
        ("passwd", "set an account's password"),
        ("grant", "let USER use ADDRESS's account"),
        ("list", "list accounts"),
    ], actions):  # fmt: skip
        if action != "list":
            a.add_argument("address")
        if action in ("add", "passwd"):
            a.add_argument("--password", help="the password (else asked, or read from stdin)")
        if action == "grant":
            a.add_argument("user")
            a.add_argument("--read-only", action="store_true")
        if action == "remove":
            a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    alias = actions.add_parser("alias", help="manage the other addresses mail arrives at")
    for alias_action, b in subcommands(alias, "alias_action", [
        ("add", "deliver mail for ALIAS (local@domain, or @domain for a catch-all)"),
        ("remove", "stop delivering mail for ALIAS"),
        ("list", "list the account's aliases"),
    ]):  # fmt: skip
        b.add_argument("address")
        if alias_action != "list":
            b.add_argument("alias")
    account.set_defaults(run=cmd_account)

    token = sub.add_parser("token", help="manage API bearer tokens")
    for action, t in subcommands(token, "action", [
        ("create", "create a token and print it"),
        ("list", "list an account's tokens (names, never the secrets)"),
        ("revoke", "revoke a token"),
    ]):  # fmt: skip
        t.add_argument("address")
        if action != "list":
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
    for name, help in (
        ("backup", "copy everything, consistently, while the server runs"),
        ("restore", "restore a backup into an empty data directory or database"),
    ):
        command = sub.add_parser(name, help=help)
        add_config_flags(command)
        command.add_argument("directory")
        command.set_defaults(run=cmd_backup)
    check = sub.add_parser("check", help="verify counts, threads, index, blobs and states")
    add_config_flags(check)
    check.add_argument("--repair", action="store_true", help="rebuild what can be rebuilt")
    check.set_defaults(run=cmd_check)
    dkim = sub.add_parser("dkim", help="manage the DKIM keys outgoing mail is signed with")
    for action, d in subcommands(dkim, "action", [
        ("generate", "make a key for DOMAIN and print the DNS record to publish"),
        ("list", "list the keys: domain, selector, file"),
    ]):  # fmt: skip
        if action == "generate":
            d.add_argument("domain")
            d.add_argument("--selector", help="the key's selector (default: dkim_selector)")
            d.add_argument("--force", action="store_true", help="replace an existing key")
        else:
            d.add_argument("--records", action="store_true", help="print each DNS record too")
    dkim.set_defaults(run=cmd_dkim)
    contacts = sub.add_parser("contacts", help="import and export contacts as vCard")
    for action, c in subcommands(contacts, "action", [
        ("import", "import the cards of a vCard file (3.0 or 4.0)"),
        ("export", "write every card of an account as vCard 4.0 to stdout"),
    ]):  # fmt: skip
        if action == "import":
            c.add_argument("file", help="the .vcf file")
            c.add_argument("--address-book", help="put the cards in this address book "
                           "(made if need be; else the default one)")  # fmt: skip
        c.add_argument("--account", required=True, help="the account's address")
    contacts.set_defaults(run=cmd_contacts)
    ref = sub.add_parser("config-reference", help="print the configuration reference")
    ref.set_defaults(run=cmd_config_reference)
    return p


def main(argv: list[str] | None = None) -> int:
    from .store.postgres import Unreachable

    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (configuration.ConfigError, UsageError) as e:
        print(f"jmapd: {e}", file=sys.stderr)
        return 2
    except Unreachable as e:
        print(f"jmapd: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
