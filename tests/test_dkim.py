"""DKIM signing of outgoing mail (issue 12 item 4): `jmapd dkim generate` makes a key and prints
its DNS record; Signer signs with it, and dkimpy's verifier, given that record as DNS,
accepts the signature (RFC 6376)."""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jmapd.config import Config, load
from jmapd.smtp.dkim import DKIMError, Signer
from tests.test_cli import cli, run
from tests.test_cli_errors import one_line_error

RECORD = re.compile(r'(\S+) IN TXT ((?:"[^"]*" ?)+)')
MESSAGE = (
    b"From: Ann Example <ann@Example.com>\r\n"
    b"To: bob@example.org\r\n"
    b"Cc: Carol <carol@example.net>\r\n"
    b"Subject: Lunch\r\n"
    b"Date: Thu, 04 Dec 2025 10:00:00 +0000\r\n"
    b"Message-ID: <lunch.1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"In-Reply-To: <asked.1@example.org>\r\n"
    b"References: <asked.1@example.org>\r\n"
    b"Reply-To: ann@example.com\r\n"
    b"X-Mailer: not signed\r\n"
    b"\r\n"
    b"Noon at the usual place?\r\n"
)


def generate(data: Path, *args: str) -> str:
    """`jmapd dkim generate`: its record (stdout), after checking what it says on stderr."""
    result = run(data, "dkim", "generate", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("jmapd: made a 2048-bit RSA key for "), result.stderr
    assert "publish the record above in DNS" in result.stderr
    return result.stdout


def dns(*records: str) -> Callable[..., bytes | None]:
    """A DNS peer answering the TXT queries of the records the command line printed."""
    txt = {}
    for record in records:
        match = RECORD.fullmatch(record.strip())
        assert match, record
        txt[match[1].encode()] = "".join(re.findall(r'"([^"]*)"', match[2])).encode()

    def answer(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.get(name)

    return answer


def config(data: Path, **values: str) -> Config:
    environ = {f"JMAPD_{name.upper()}": value for name, value in values.items()}
    return load(overrides={"data": str(data)}, environ=environ)


def tags(signed: bytes) -> dict[str, str]:
    field = signed.split(b"\r\n\r\n", 1)[0].decode().split("\r\nFrom:", 1)[0]
    assert field.startswith("DKIM-Signature: ")
    value = re.sub(r"\s+", "", field.removeprefix("DKIM-Signature: "))
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data directory with a key for example.com, and its record."""
    data = tmp_path_factory.mktemp("dkim") / "data"
    return data, generate(data, "Example.COM")


def test_generate_prints_the_record_and_keeps_the_key_private(keys: tuple[Path, str]) -> None:
    data, record = keys
    assert record.endswith("\n") and record.count("\n") == 1
    match = re.fullmatch(
        r'jmapd\._domainkey\.example\.com\. IN TXT "(v=DKIM1; k=rsa; p=[A-Za-z0-9+/]{237})" '
        r'"([A-Za-z0-9+/]+={0,2})"\n',
        record,
    )
    assert match, record
    assert len(match[1]) == 255 and len(match[2]) <= 255  # RFC 1035 §3.3: strings ≤ 255
    key_file = data / "dkim" / "example.com.jmapd.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    published = base64.b64decode((match[1] + match[2]).removeprefix("v=DKIM1; k=rsa; p="))
    assert published == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    result = run(data, "dkim", "list")
    assert (result.returncode, result.stdout) == (0, f"example.com jmapd {key_file}\n")
    listed = run(data, "dkim", "list", "--records").stdout.splitlines()
    assert listed[1] + "\n" == record


def test_a_signed_message_verifies_against_the_published_record(keys: tuple[Path, str]) -> None:
    data, record = keys
    signed = Signer.load(config(data)).sign(MESSAGE)
    assert signed.endswith(b"\r\n" + MESSAGE) and signed.startswith(b"DKIM-Signature: ")
    signature = tags(signed)
    assert signature["a"] == "rsa-sha256" and signature["c"] == "relaxed/relaxed"
    assert (signature["d"], signature["s"]) == ("example.com", "jmapd")
    assert signature["h"].split(":") == [
        "from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type",
        "in-reply-to", "references", "reply-to", "from",
    ]  # fmt: skip
    assert dkim.verify(signed, dnsfunc=dns(record))
    # relaxed/relaxed (RFC 6376 §3.4.2, §3.4.4): re-folded white space still verifies …
    refolded = signed.replace(b"Subject: Lunch", b"Subject:   Lunch").replace(
        b"place?\r\n", b"place?  \r\n\r\n"
    )
    assert dkim.verify(refolded, dnsfunc=dns(record))
    # … changed words, or a second From, do not.
    assert not dkim.verify(signed.replace(b"Noon", b"Nine"), dnsfunc=dns(record))
    assert not dkim.verify(signed.replace(b"Lunch", b"Dinner"), dnsfunc=dns(record))
    second_from = signed.replace(b"X-Mailer:", b"From: mallory@example.com\r\nX-Mailer:")
    assert not dkim.verify(second_from, dnsfunc=dns(record))


def test_bare_line_feeds_are_kept(keys: tuple[Path, str]) -> None:
    data, record = keys
    message = MESSAGE.replace(b"\r\n", b"\n")
    signed = Signer.load(config(data)).sign(message)
    assert signed.endswith(b"\n" + message) and b"\r" not in signed
    assert dkim.verify(signed, dnsfunc=dns(record))


@pytest.mark.parametrize(
    "message",
    [
        MESSAGE.replace(b"ann@Example.com", b"ann@example.org"),
        MESSAGE.replace(b"ann@Example.com", b"ann@sub.example.com"),
        MESSAGE.replace(b"From: Ann Example <ann@Example.com>\r\n", b""),
        MESSAGE.replace(b"ann@Example.com", b"undisclosed-recipients:;"),
        b"not a message",
        b"",
    ],
)
def test_a_message_without_a_key_is_unchanged(keys: tuple[Path, str], message: bytes) -> None:
    assert Signer.load(config(keys[0])).sign(message) == message


def test_no_key_directory_signs_nothing(tmp_path: Path) -> None:
    assert Signer.load(config(tmp_path)).sign(MESSAGE) == MESSAGE


def test_selectors_and_replacing_a_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = generate(data, "example.com")
    one_line_error(run(data, "dkim", "generate", "example.com"), "exists: use --force")
    assert Signer.load(config(data)).keys["example.com"][0] == "jmapd"
    new = generate(data, "example.com", "--selector", "Rotated2025")
    assert new.startswith("rotated2025._domainkey.example.com. IN TXT ")
    # The selector dkim_selector names signs, else the oldest key: a new one waits its turn.
    assert tags(Signer.load(config(data)).sign(MESSAGE))["s"] == "jmapd"
    switched = Signer.load(config(data, dkim_selector="rotated2025")).sign(MESSAGE)
    assert tags(switched)["s"] == "rotated2025"
    assert dkim.verify(switched, dnsfunc=dns(first, new))
    old = data / "dkim" / "example.com.jmapd.key"
    os.utime(old, (os.stat(old).st_atime, os.stat(old).st_mtime + 3600))
    assert tags(Signer.load(config(data, dkim_selector="other")).sign(MESSAGE))["s"] == (
        "rotated2025"
    )
    replaced = generate(data, "example.com", "--force")
    assert replaced != first
    signed = Signer.load(config(data)).sign(MESSAGE)
    assert dkim.verify(signed, dnsfunc=dns(replaced))
    assert not dkim.verify(signed, dnsfunc=dns(first))
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert sorted(p.name for p in (data / "dkim").iterdir()) == [
        "example.com.jmapd.key", "example.com.rotated2025.key",
    ]  # fmt: skip


def test_a_key_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dkim").mkdir()
    (tmp_path / "dkim" / "example.com.jmapd.key").write_text("not a key\n")
    with pytest.raises(DKIMError, match=r"example\.com\.jmapd\.key: not an RSA private key"):
        Signer.load(config(tmp_path))


@pytest.mark.parametrize(
    "domain",
    ["not a domain", "localhost", "bad-.example.com", "a..example.com", "exa_mple.com",
     "x" * 64 + ".com", "ann@example.com", ""],
)  # fmt: skip
def test_bad_domains_are_one_line(tmp_path: Path, domain: str) -> None:
    one_line_error(run(tmp_path, "dkim", "generate", domain), "is not a domain name")
    assert not (tmp_path / "dkim").exists()


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    one_line_error(run(tmp_path, "dkim", "generate"), "required: domain")
    one_line_error(cli("dkim"), "required: action")
    one_line_error(run(tmp_path, "dkim", "generate", "example.com", "--selector", "a.b"),
                   "--selector 'a.b': not a DNS label")  # fmt: skip
    one_line_error(run(tmp_path / "missing" / "data", "dkim", "generate", "example.com"),
                   "does not exist")  # fmt: skip
