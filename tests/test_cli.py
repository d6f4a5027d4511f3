"""The `jmapd` command line: accounts, tokens, the configuration and the first start."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jmapd.config import SCHEMA, ConfigError, load, reference_markdown
from jmapd.store.sql import migrations
from tests.conformance.test_email import account as email_account
from tests.conformance.test_email import import_, message
from tests.conftest import DATABASES, Server, database_env, jmapd, start_server, stop_server

ACCOUNT_LINE = re.compile(r"^(a[a-z0-9]{9}) (\S+)$")

# The command line and the servers it provisions run on each storage backend.
pytestmark = pytest.mark.usefixtures("backend")


def cli(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command line without JMAPD_* variables but `env`; the caller checks the exit
    code."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JMAPD_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jmapd.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
        env=environ,
    )


def run(data: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command line on a data directory and its database (of the backend under test)."""
    return cli(*args, "--data", str(data), input=input, env=database_env(data))


def accounts(data: Path) -> dict[str, str]:
    """name → id, from `account list`."""
    out = {}
    for line in jmapd(data, "account", "list").splitlines():
        match = ACCOUNT_LINE.match(line)
        assert match, line
        out[match[2]] = match[1]
    return out


def status(server: Server, auth: httpx.Auth | tuple[str, str] | None = None, **kw: str) -> int:
    """The status of GET /jmap/session with these credentials, on a fresh connection."""
    with httpx.Client(auth=auth, headers=kw.get("headers")) as http:
        return http.get(server.base + "/jmap/session").status_code


@pytest.fixture(scope="module")
def fresh(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server started on an empty data directory, remembering no credentials (so every
    change made with the command line shows at once)."""
    data = tmp_path_factory.mktemp("fresh")
    srv = start_server(data, env={"JMAPD_AUTH_CACHE_TTL": "0"})
    yield srv
    stop_server(srv)


# -- first start --------------------------------------------------------------------------------


def test_first_start_makes_a_demo_account_that_works(fresh: Server) -> None:
    creds = (fresh.data / "demo-credentials.txt").read_text()
    match = re.fullmatch(r"demo@localhost:(\S+)\n", creds)
    assert match, creds
    password = match[1]
    assert (fresh.data / "demo-credentials.txt").stat().st_mode & 0o777 == 0o600
    assert f"jmapd: demo account demo@localhost  password {password}\n" in fresh.log()
    assert accounts(fresh.data) == {"demo@localhost": accounts(fresh.data)["demo@localhost"]}
    with httpx.Client(auth=("demo@localhost", password)) as http:
        r = http.get(fresh.base + "/jmap/session")
    assert r.status_code == 200
    assert r.json()["username"] == "demo@localhost"
    assert status(fresh, ("demo@localhost", password + "x")) == 401


def test_a_second_start_makes_no_new_demo_account(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    stop_server(first)
    creds = (tmp_path / "demo-credentials.txt").read_text()
    second = start_server(tmp_path)
    try:
        assert (tmp_path / "demo-credentials.txt").read_text() == creds
        assert list(accounts(tmp_path)) == ["demo@localhost"]
        name, password = creds.strip().split(":", 1)
        assert f"password {password}" in second.log()
        assert status(second, (name, password)) == 200
    finally:
        stop_server(second)


def test_no_demo_account_when_accounts_exist(tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "owner@example.com", "--password", "pw")
    server = start_server(tmp_path)
    try:
        assert not (tmp_path / "demo-credentials.txt").exists()
        assert "demo account" not in server.log()
        assert list(accounts(tmp_path)) == ["owner@example.com"]
    finally:
        stop_server(server)


# -- accounts -----------------------------------------------------------------------------------


def test_account_add_with_a_password_flag(fresh: Server) -> None:
    out = jmapd(fresh.data, "account", "add", "flag@example.com", "--password", "flag-pass")
    match = ACCOUNT_LINE.match(out.strip())
    assert match and match[2] == "flag@example.com", out
    assert accounts(fresh.data)["flag@example.com"] == match[1]
    assert status(fresh, ("flag@example.com", "flag-pass")) == 200


def test_account_add_with_the_password_on_stdin(fresh: Server) -> None:
    out = jmapd(fresh.data, "account", "add", "stdin@example.com", input="from stdin: ok\n")
    assert out.strip().endswith(" stdin@example.com")
    assert status(fresh, ("stdin@example.com", "from stdin: ok")) == 200
    assert status(fresh, ("stdin@example.com", "from stdin: ok\n")) == 401


def test_account_list_prints_id_and_name_sorted_by_name(tmp_path: Path) -> None:
    added = {}
    for name in ("zed@example.com", "amy@example.com", "mo@example.com"):
        added[name] = jmapd(tmp_path, "account", "add", name, "--password", "pw").split()[0]
    out = jmapd(tmp_path, "account", "list")
    assert out == "".join(
        f"{added[name]} {name}\n"
        for name in ("amy@example.com", "mo@example.com", "zed@example.com")
    )
    assert len(set(added.values())) == 3


def test_account_list_of_an_empty_data_dir_prints_nothing(tmp_path: Path) -> None:
    assert jmapd(tmp_path, "account", "list") == ""


def test_adding_a_duplicate_account_fails(tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "dup@example.com", "--password", "one")
    result = run(tmp_path, "account", "add", "dup@example.com", "--password", "two")
    assert result.returncode == 2
    assert result.stderr == "jmapd: account dup@example.com exists\n"
    assert result.stdout == ""
    assert list(accounts(tmp_path)) == ["dup@example.com"]


def test_account_passwd_changes_the_password(fresh: Server) -> None:
    jmapd(fresh.data, "account", "add", "pw@example.com", "--password", "old-pass")
    assert status(fresh, ("pw@example.com", "old-pass")) == 200
    out = jmapd(fresh.data, "account", "passwd", "pw@example.com", "--password", "new-pass")
    assert out == "jmapd: changed the password of pw@example.com\n"
    assert status(fresh, ("pw@example.com", "new-pass")) == 200
    assert status(fresh, ("pw@example.com", "old-pass")) == 401
    jmapd(fresh.data, "account", "passwd", "pw@example.com", input="newest-pass\n")
    assert status(fresh, ("pw@example.com", "newest-pass")) == 200
    assert status(fresh, ("pw@example.com", "new-pass")) == 401


def test_account_remove(fresh: Server) -> None:
    jmapd(fresh.data, "account", "add", "gone@example.com", "--password", "gone-pass")
    token = jmapd(fresh.data, "token", "create", "gone@example.com").strip()
    assert status(fresh, ("gone@example.com", "gone-pass")) == 200
    # Not at a terminal, removing needs --yes.
    result = run(fresh.data, "account", "remove", "gone@example.com")
    assert result.returncode == 2
    assert result.stderr == (
        "jmapd: Remove gone@example.com and all its mail? Refused: confirm with --yes when "
        "not at a terminal\n"
    )
    assert "gone@example.com" in accounts(fresh.data)
    out = jmapd(fresh.data, "account", "remove", "gone@example.com", "--yes")
    assert out == "jmapd: removed account gone@example.com and its data (0 blob files)\n"
    assert "gone@example.com" not in accounts(fresh.data)
    assert status(fresh, ("gone@example.com", "gone-pass")) == 401
    assert status(fresh, headers={"Authorization": f"Bearer {token}"}) == 401


def test_commands_on_an_unknown_account_fail(tmp_path: Path) -> None:
    for args in (
        ("account", "remove", "nobody@example.com"),
        ("account", "passwd", "nobody@example.com", "--password", "x"),
        ("token", "create", "nobody@example.com"),
    ):
        result = run(tmp_path, *args)
        assert result.returncode == 2, args
        assert result.stderr == "jmapd: no account nobody@example.com\n", args


def test_account_grant_shares_an_account(fresh: Server) -> None:
    jmapd(fresh.data, "account", "add", "owner@example.com", "--password", "owner-pass")
    jmapd(fresh.data, "account", "add", "guest@example.com", "--password", "guest-pass")
    jmapd(fresh.data, "account", "grant", "owner@example.com", "guest@example.com", "--read-only")
    ids = accounts(fresh.data)
    with httpx.Client(auth=("guest@example.com", "guest-pass")) as http:
        session = http.get(fresh.base + "/jmap/session").json()
    shared = session["accounts"][ids["owner@example.com"]]
    assert shared["name"] == "owner@example.com"
    assert shared["isReadOnly"] is True
    assert shared["isPersonal"] is False


# -- tokens -------------------------------------------------------------------------------------


def test_token_create_gives_a_working_bearer_token(fresh: Server) -> None:
    jmapd(fresh.data, "account", "add", "tok@example.com", "--password", "tok-pass")
    token = jmapd(fresh.data, "token", "create", "tok@example.com", "--name", "laptop")
    assert token.endswith("\n") and token.count("\n") == 1
    token = token.strip()
    assert len(token) >= 32
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        r = http.get(fresh.base + "/jmap/session")
    assert r.status_code == 200
    assert r.json()["username"] == "tok@example.com"
    assert status(fresh, headers={"Authorization": f"Bearer {token}x"}) == 401

    assert jmapd(fresh.data, "token", "revoke", "tok@example.com", "--name", "laptop") == (
        "jmapd: revoked token laptop of tok@example.com\n"
    )
    assert status(fresh, headers={"Authorization": f"Bearer {token}"}) == 401


def test_read_only_token(fresh: Server) -> None:
    jmapd(fresh.data, "account", "add", "ro@example.com", "--password", "ro-pass")
    token = jmapd(fresh.data, "token", "create", "ro@example.com", "--read-only").strip()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        session = http.get(fresh.base + "/jmap/session").json()
        (account_id,) = session["accounts"]
        # The account itself is not read-only; the token's policy forbids writes.
        assert session["accounts"][account_id]["isReadOnly"] is False
        body = {
            "using": ["urn:ietf:params:jmap:core"],
            "methodCalls": [
                [
                    "Blob/copy",
                    {"fromAccountId": account_id, "accountId": account_id, "blobIds": []},
                    "c1",
                ]
            ],
        }
        r = http.post(fresh.base + "/jmap/api", json=body)
    assert r.json()["methodResponses"][0][:2] == [
        "error",
        {"type": "forbidden", "description": "this API token may only read"},
    ]


def test_two_tokens_with_the_same_name_fail(tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "tok@example.com", "--password", "pw")
    jmapd(tmp_path, "token", "create", "tok@example.com", "--name", "phone")
    result = run(tmp_path, "token", "create", "tok@example.com", "--name", "phone")
    assert result.returncode == 2
    assert result.stderr == "jmapd: token phone exists for tok@example.com\n"


def test_revoking_an_unknown_token_fails(tmp_path: Path) -> None:
    jmapd(tmp_path, "account", "add", "tok@example.com", "--password", "pw")
    result = run(tmp_path, "token", "revoke", "tok@example.com", "--name", "never-made")
    assert result.returncode == 2
    assert result.stderr == "jmapd: no token never-made for tok@example.com\n"


# -- migrate, config-reference ------------------------------------------------------------------


def test_migrate_reports_the_schema_version(tmp_path: Path) -> None:
    out = jmapd(tmp_path, "migrate")
    assert re.fullmatch(r"jmapd: schema version [1-9][0-9]*\n", out), out
    assert jmapd(tmp_path, "migrate") == out


def test_config_reference_prints_the_markdown_table() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jmapd.cli", "config-reference"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == reference_markdown()
    lines = result.stdout.splitlines()
    assert lines[0] == "# Configuration reference"
    header = lines.index("| option | environment | flag | type | default | meaning |")
    assert lines[header + 1] == "| --- | --- | --- | --- | --- | --- |"
    rows = lines[header + 2 :]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{o.name}`" for o in SCHEMA]
    assert (
        "| `max_size_upload` | `JMAPD_MAX_SIZE_UPLOAD` |  | int | `50000000` | "
        "Session limit maxSizeUpload, in octets. |"
    ) in rows
    assert "| `listen` | `JMAPD_LISTEN` | `--listen` | str | `'127.0.0.1:8080'` |" in "\n".join(
        rows
    )


# -- configuration precedence: defaults < file < environment < flags ------------------------------


def test_config_defaults() -> None:
    config = load(None, {}, {})
    assert config.values == {o.name: o.default for o in SCHEMA}
    assert config.listen == "127.0.0.1:8080"
    assert config.workers == "auto"  # one worker per CPU
    assert config.data_dir == Path("./data")


def test_config_precedence(tmp_path: Path) -> None:
    file = tmp_path / "jmapd.toml"
    file.write_text(
        'listen = "0.0.0.0:1000"\n'
        "workers = 2\n"
        "max_size_upload = 1234\n"
        'extra_modules = ["a", "b"]\n'
        'log_level = "debug"\n'
    )
    environ = {"JMAPD_WORKERS": "3", "JMAPD_LISTEN": "0.0.0.0:2000", "JMAPD_EXTRA_MODULES": "c, d"}
    overrides = {"listen": "0.0.0.0:3000", "workers": None, "data": "/srv/jmapd"}
    config = load(str(file), overrides, environ)
    assert config.listen == "0.0.0.0:3000"  # flag > environment > file
    assert config.workers == 3  # environment > file; an absent flag (None) does not count
    assert config.max_size_upload == 1234  # file > default
    assert config.extra_modules == ["c", "d"]  # environment, a comma-separated list
    assert config.log_level == "debug"  # file
    assert config.data == "/srv/jmapd"  # flag
    assert config.max_size_request == 10_000_000  # default
    assert load(str(file), {}, {}).extra_modules == ["a", "b"]


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "from-env.toml"
    file.write_text("max_changes = 7\n")
    assert load(None, {}, {"JMAPD_CONFIG": str(file)}).max_changes == 7
    other = tmp_path / "given.toml"
    other.write_text("max_changes = 8\n")
    assert load(str(other), {}, {"JMAPD_CONFIG": str(file)}).max_changes == 8


def test_config_errors(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"

    def error(text: str, environ: dict[str, str] | None = None) -> str:
        file.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load(str(file), {}, environ or {})
        return str(caught.value)

    assert error('no_such_option = "x"\n') == f"{file}: unknown option 'no_such_option'"
    not_int = "invalid literal for int() with base 10"
    assert error('workers = "many"\n') == f"{file}: workers: {not_int}: 'many'"
    assert error("workers = true\n") == f"{file}: workers: expected a number or auto"
    assert error("workers = 2.5\n") == f"{file}: workers: expected a number or auto"
    assert error("workers = 0\n") == f"{file}: workers: at least 1, or auto (one per CPU)"
    assert error("listen = 8080\n") == f"{file}: listen: expected a string"
    assert error("extra_modules = [1, 2]\n") == f"{file}: extra_modules: expected a list of strings"
    assert error("listen = \n").startswith(f"{file}: ")  # not TOML
    assert error("", {"JMAPD_MAX_SIZE_UPLOAD": "big"}) == (
        f"JMAPD_MAX_SIZE_UPLOAD: max_size_upload: {not_int}: 'big'"
    )
    with pytest.raises(ConfigError) as caught:
        load(str(tmp_path / "missing.toml"), {}, {})
    assert str(caught.value).startswith(f"{tmp_path / 'missing.toml'}: ")
    with pytest.raises(ConfigError) as caught:
        load(None, {"workers": "two"}, {})
    assert str(caught.value) == f"--workers: workers: {not_int}: 'two'"


def test_config_flags_and_errors_on_the_command_line(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("colour = 'blue'\n")
    result = run(tmp_path, "account", "list", "--config", str(file))
    assert result.returncode == 2
    assert result.stderr == f"jmapd: {file}: unknown option 'colour'\n"
    # The data directory comes from the file unless the flag says otherwise.
    good = tmp_path / "good.toml"
    good.write_text(f"data = '{tmp_path / 'elsewhere'}'\n")
    env = database_env(tmp_path / "elsewhere")
    args = ("account", "add", "x@example.com", "--password", "p", "--config", str(good))
    result = cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    if not env:  # SQLite: the database lives in the data directory the file named
        assert (tmp_path / "elsewhere" / "jmapd.sqlite3").exists()
    assert jmapd(tmp_path / "elsewhere", "account", "list").endswith(" x@example.com\n")


# -- reindex ------------------------------------------------------------------------------------


def forget_the_index(data: Path) -> None:
    """Empty the message index in the database, as a data directory from before the index
    (schema version 1) would be after `migrate` created its empty tables."""
    tables = ("emails", "email_mailboxes", "email_keywords")
    url = DATABASES.url(data)
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            for table in tables:
                db.execute(f"DELETE FROM {table}")
        return
    with sqlite3.connect(data / "jmapd.sqlite3") as db:
        db.execute("INSERT INTO email_text (email_text) VALUES ('delete-all')")
        for table in ("email_words", *tables):
            db.execute(f"DELETE FROM {table}")


def test_reindex_rebuilds_the_search_index(fresh: Server) -> None:
    """`jmapd reindex` rebuilds the index from the messages, with a progress bar; `migrate`
    rebuilds it for an account whose index lacks messages (an upgrade)."""
    client, account_id, boxes = email_account(fresh)
    email = import_(client, account_id, boxes["inbox"], message("Wombat news", "<ix@x.test>"))
    text_query = {"accountId": account_id, "filter": {"subject": "wombat"}}
    assert client.ok("Email/query", text_query)["ids"] == [email["id"]]

    forget_the_index(fresh.data)
    assert client.ok("Email/query", text_query)["ids"] == []  # the index answers
    user = client.session()["username"]
    result = run(fresh.data, "reindex", user)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "jmapd: indexed 1 messages\n"
    assert f"{user}" in result.stderr and "] 1/1" in result.stderr
    assert client.ok("Email/query", text_query)["ids"] == [email["id"]]
    inbox = client.ok("Mailbox/get", {"accountId": account_id, "ids": [boxes["inbox"]]})
    assert inbox["list"][0]["totalEmails"] == 1

    forget_the_index(fresh.data)
    assert run(fresh.data, "migrate").returncode == 0
    assert client.ok("Email/query", text_query)["ids"] == [email["id"]]


FTS5_FIELDS = "subject, from_, to_, cc, bcc, body"


def test_a_full_text_index_that_kept_a_copy_of_the_words_is_rebuilt(tmp_path: Path) -> None:
    """Issue 11 (disk): SQLite's full-text table kept a second copy of every message's words
    (FTS5's content, half the database); it now keeps the index alone. A data directory made
    before (schema 10) is converted by `migrate`, which rebuilds the index: search finds
    what it found, and a destroyed message's words leave the index."""
    from tests.conformance.test_hardening import indexed_words

    DATABASES.by_data[tmp_path] = ""  # the change is SQLite's (PostgreSQL keeps tsvectors)
    srv = start_server(tmp_path)
    try:
        client, account_id, boxes = email_account(srv)
        old = import_(client, account_id, boxes["inbox"], message("Wombat news", "<w@x.test>"))
        new = import_(client, account_id, boxes["inbox"], message("Wombat zebu", "<z@x.test>"))
        ((user, password),) = srv.passwords.items()
    finally:
        stop_server(srv)
    run_sql(
        tmp_path,  # the table as schema 10 made it, holding what it held
        "DELETE FROM schema_version WHERE version > 10",
        "DROP TABLE email_text",
        "DROP TABLE email_words",
        f"CREATE VIRTUAL TABLE email_text USING fts5 ({FTS5_FIELDS}, "
        "tokenize = 'unicode61 remove_diacritics 0')",
        f"INSERT INTO email_text (rowid, {FTS5_FIELDS}) SELECT seq, 'wombat ' || "
        "CASE WHEN id = '" + old["id"] + "' THEN 'news' ELSE 'zebu' END, "
        "'joe joe example com', 'ann example com', '', '', 'hello' FROM emails",
    )
    result = run(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "jmapd.sqlite3") as db:
        assert db.execute("SELECT max(version) FROM schema_version").fetchone()[0] >= 11
        with pytest.raises(sqlite3.OperationalError):  # a contentless table has no content
            db.execute("SELECT subject FROM email_text_content").fetchall()
    srv = start_server(tmp_path)
    try:
        client = srv.client_with((user, password))
        query = {"accountId": account_id, "filter": {"text": "wombat"}, "sort": [
            {"property": "subject"}]}  # fmt: skip
        assert client.ok("Email/query", query)["ids"] == [old["id"], new["id"]]
        client.ok("Email/set", {"accountId": account_id, "destroy": [new["id"]]})
        assert client.ok("Email/query", query)["ids"] == [old["id"]]
        assert "zebu" not in indexed_words(srv) and "news" in indexed_words(srv)
    finally:
        stop_server(srv)
    check = run(tmp_path, "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_reindex_of_an_unknown_account_fails(tmp_path: Path) -> None:
    result = run(tmp_path, "reindex", "nobody@example.com")
    assert result.returncode != 0
    assert "no account nobody@example.com" in result.stderr


def run_sql(data: Path, *statements: str) -> None:
    """Statements on the database of a data directory (of the backend under test)."""
    url = DATABASES.url(data)
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            for statement in statements:
                db.execute(statement)
        return
    with sqlite3.connect(data / "jmapd.sqlite3") as db:
        for statement in statements:
            db.execute(statement)


def latest_schema(data: Path) -> str:
    """What `migrate` says once the data directory's database is at the newest version."""
    versions = migrations("postgresql" if DATABASES.url(data) else "sqlite")
    return f"jmapd: schema version {versions[-1][0]}\n"


UNDO_4 = ("ALTER TABLE blobs DROP COLUMN refs", "DROP TABLE blob_orphans")


def test_migration_4_counts_the_blob_references_of_existing_mail(fresh: Server) -> None:
    """Migration 0004 counts each blob's uses from the Email records of a version-3 database
    (whose blob rows were never released) and drops the rows nothing uses: that mail is
    gone at once."""
    client, account_id, boxes = email_account(fresh)
    one = import_(client, account_id, boxes["inbox"], message("Kept", "<m4a@x.test>"))
    twice = message("Twice", "<m4b@x.test>")
    import_(client, account_id, boxes["inbox"], twice)
    import_(client, account_id, boxes["archive"], twice)
    stale = "B" + "7" * 64  # a blob of an Email destroyed before references were counted
    run_sql(
        fresh.data,
        *UNDO_4,
        f"INSERT INTO blobs (account_id, blob_id, uploader, size, expires) VALUES "
        f"('{account_id}', '{stale}', '', 10, NULL)",
        "DELETE FROM schema_version WHERE version >= 4",
    )
    assert run(fresh.data, "migrate").stdout.startswith(latest_schema(fresh.data))
    rows = dict(rows_of(fresh.data, "SELECT blob_id, refs FROM blobs WHERE account_id = "
                                    f"'{account_id}' AND uploader = ''"))  # fmt: skip
    assert rows[one["blobId"]] == 1
    assert sorted(rows.values()) == [1, 2]
    assert stale not in rows
    assert run(fresh.data, "check").returncode == 0


def rows_of(data: Path, sql: str) -> list[Any]:
    url = DATABASES.url(data)
    if url:
        import psycopg

        with psycopg.connect(url) as db:
            return db.execute(sql).fetchall()
    with sqlite3.connect(data / "jmapd.sqlite3") as db:
        return db.execute(sql).fetchall()


def test_migration_3_counts_the_mailboxes_of_existing_mail(fresh: Server) -> None:
    """Migration 0003 fills the kept mailbox counts from the index a version-2 database has."""
    client, account_id, boxes = email_account(fresh)
    import_(client, account_id, boxes["inbox"], message("One", "<m3a@x.test>"))
    import_(client, account_id, boxes["inbox"], message("Two", "<m3b@x.test>"),
            keywords={"$seen": True})  # fmt: skip
    import_(client, account_id, boxes["archive"], message("Two", "<m3c@x.test>",
            refs="<m3b@x.test>"))  # fmt: skip
    before = client.ok("Mailbox/get", {"accountId": account_id, "ids": None})["list"]
    run_sql(
        fresh.data,
        "DROP TABLE mailbox_threads",
        "DROP TABLE mailbox_counts",
        *UNDO_4,
        "DELETE FROM schema_version WHERE version >= 3",
    )
    assert run(fresh.data, "migrate").stdout.startswith(latest_schema(fresh.data))
    after = client.ok("Mailbox/get", {"accountId": account_id, "ids": None})["list"]
    assert after == before
    inbox = next(m for m in after if m["role"] == "inbox")
    assert [inbox[k] for k in ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")] == [
        2, 1, 2, 1,
    ]  # fmt: skip


def test_migration_10_adds_contacts_to_existing_accounts(fresh: Server) -> None:
    """An account of a version-8 database (before contacts) gets the card index and, from
    `migrate`, its default address book (RFC 9610 §2)."""
    client, account_id, _ = email_account(fresh)
    run_sql(
        fresh.data,
        *(f"DROP TABLE {t}" for t in ("cards", "card_books", "card_members", "card_terms")),
        "DELETE FROM records WHERE type = 'AddressBook'",
        "DELETE FROM schema_version WHERE version >= 9",
    )
    assert run(fresh.data, "migrate").stdout.startswith(latest_schema(fresh.data))
    using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:contacts"]
    _, books = client.call("AddressBook/get", {"accountId": account_id}, using)
    assert [(b["name"], b["isDefault"]) for b in books["list"]] == [("Personal", True)]
    _, out = client.call("ContactCard/set", {"accountId": account_id, "create": {
        "c": {"uid": "after-migration", "name": {"full": "Ann"}}}}, using)  # fmt: skip
    assert out["notCreated"] is None, out
    _, found = client.call("ContactCard/query", {"accountId": account_id,
                                                    "filter": {"name": "ann"}}, using)  # fmt: skip
    assert found["ids"] == [out["created"]["c"]["id"]]
    assert run(fresh.data, "migrate").stdout.startswith(latest_schema(fresh.data))
    assert len(client.call("AddressBook/get", {"accountId": account_id}, using)[1]["list"]) == 1
