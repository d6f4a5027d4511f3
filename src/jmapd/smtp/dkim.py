"""DKIM signatures (RFC 6376) on outgoing mail: one RSA key per domain in DATA/dkim.

A key is the file `DATA/dkim/<domain>.<selector>.key` (PEM, mode 0600), made by
`jmapd dkim generate DOMAIN`, which prints the TXT record to publish. A message is signed
when a key exists for the domain of its From address; a domain with several keys (a new
one being rolled out) is signed with the one of the selector `dkim_selector` names, else
with its oldest, so a new key signs nothing before the operator switches to it.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from ..config import Config

log = logging.getLogger("jmapd.dkim")

KEY_BITS = 2048
# The header fields signed when present (RFC 6376 §5.4.1's list, less the trace fields).
SIGNED = (
    "from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type",
    "in-reply-to", "references", "reply-to",
)  # fmt: skip
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
TXT_STRING = 255  # the longest character-string of a TXT record (RFC 1035 §3.3)


class DKIMError(Exception):
    """A bad domain or selector, a key that exists, or a key file that is not one."""


@dataclass(frozen=True)
class Key:
    domain: str
    selector: str
    path: Path

    @property
    def pem(self) -> bytes:
        return self.path.read_bytes()


def key_directory(config: Config) -> Path:
    return config.data_dir / "dkim"


def domain_name(name: str) -> str:
    """The domain in lower-case ASCII (IDNA for a Unicode one), or DKIMError."""
    try:
        ascii_name = name.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not all(map(LABEL.fullmatch, labels)):
        raise DKIMError(f"{name!r} is not a domain name (e.g. example.com)")
    return ascii_name


def selector_name(name: str) -> str:
    # One DNS label, so that the file name <domain>.<selector>.key splits at its last dot.
    if not LABEL.fullmatch(name.lower()):
        raise DKIMError(f"--selector {name!r}: not a DNS label (letters, digits, -)")
    return name.lower()


def keys(config: Config) -> list[Key]:
    """Every key in DATA/dkim, by domain and selector."""
    directory = key_directory(config)
    found = []
    for path in sorted(directory.glob("*.key")) if directory.is_dir() else []:
        domain, _, selector = path.name.removesuffix(".key").rpartition(".")
        if domain and selector:
            found.append(Key(domain, selector, path))
    return found


def dns_record(domain: str, selector: str, private_pem: bytes) -> str:
    """The TXT record that publishes the public half of a key (RFC 6376 §3.6.1)."""
    try:
        private = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError):
        private = None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise DKIMError(f"the key of {selector}._domainkey.{domain} is not an RSA key in PEM")
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode("ascii")
    strings = " ".join(f'"{text[i : i + TXT_STRING]}"' for i in range(0, len(text), TXT_STRING))
    return f"{selector}._domainkey.{domain}. IN TXT {strings}"


def generate(config: Config, domain: str, selector: str, force: bool = False) -> str:
    """Make a key for the domain (replacing one of the same selector only with `force`) and
    return its DNS record."""
    domain, selector = domain_name(domain), selector_name(selector)
    directory = key_directory(config)
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    path = directory / f"{domain}.{selector}.key"
    if path.exists() and not force:
        raise DKIMError(
            f"{path} exists: use --force to replace it (its DNS record too), or another --selector"
        )
    pem = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
    return dns_record(domain, selector, pem)


class Signer:
    """Signs messages with the keys that were in DATA/dkim when it was loaded."""

    def __init__(self, keys: dict[str, tuple[str, bytes]]) -> None:
        self.keys = keys  # domain → (selector, PEM private key)

    @classmethod
    def load(cls, config: Config) -> Signer:
        """Read every key once; a file that is not an RSA key is a DKIMError."""
        preferred = str(config.dkim_selector).lower()
        chosen: dict[str, Key] = {}
        for key in sorted(keys(config), key=lambda k: k.path.stat().st_mtime):  # oldest first
            if key.domain not in chosen or key.selector == preferred:
                chosen[key.domain] = key
        loaded = {}
        for domain, key in chosen.items():
            pem = key.pem
            try:
                parse_pem_private_key(pem)
            except (UnparsableKeyError, ValueError):
                raise DKIMError(f"{key.path}: not an RSA private key in PEM") from None
            loaded[domain] = (key.selector, pem)
        return cls(loaded)

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature field in front when there is a key for the domain
        of its From address; else (or when dkimpy cannot parse it, logged) the message."""
        headers = BytesHeaderParser().parsebytes(message)
        domain = from_domain(headers.get("From"))
        if domain not in self.keys:
            return message
        selector, pem = self.keys[domain]
        end = message.find(b"\n")
        linesep = b"\r\n" if end > 0 and message[end - 1 : end] == b"\r" else b"\n"
        # From twice: no second From can be added without breaking the signature.
        include = [name.lower() for name in headers if name.lower() in SIGNED] + ["from"]
        try:
            signature = dkim.sign(
                message, selector.encode(), domain.encode(), pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[name.encode() for name in include], linesep=linesep,
            )  # fmt: skip
        except dkim.DKIMException as e:
            log.warning("not signed: %s", e)
            return message
        return bytes(signature) + message


def from_domain(field: object) -> str | None:
    """The domain of the (first) address of a From field, normalised; None without one."""
    addresses = [address for _, address in getaddresses([str(field)])] if field else []
    if not addresses or "@" not in addresses[0]:
        return None
    try:
        return domain_name(addresses[0].rpartition("@")[2])
    except DKIMError:
        return None
