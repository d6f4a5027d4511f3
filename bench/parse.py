"""How long MIME parsing takes: python -m bench.parse"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable

from jmapd.mail import Message, parse_message


def ten_megabyte_attachment() -> bytes:
    encoded = base64.encodebytes(os.urandom(10 * 1024 * 1024)).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.com\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--XX\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--XX--\r\n"
    )


def one_megabyte_header() -> bytes:
    to = ",\r\n ".join(f'"User {i}" <user{i}@example.com>' for i in range(25_000))
    return f"To: {to}\r\nSubject: x\r\n\r\nbody\r\n".encode()


def everything(msg: Message) -> None:
    msg.properties(), msg.body_structure(), msg.text_body(), msg.html_body()
    msg.attachments(), msg.has_attachment(), msg.preview(), msg.threading_keys()


def measure(label: str, raw: bytes, after: Callable[[Message], None]) -> None:
    start = time.perf_counter()
    msg = parse_message(raw)
    parsed = time.perf_counter()
    after(msg)
    done = time.perf_counter()
    print(
        f"{label}: {len(raw) / 1e6:.1f} MB, parse {(parsed - start) * 1000:.0f} ms, "
        f"properties {(done - parsed) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    measure("10 MB attachment", ten_megabyte_attachment(), everything)
    measure("1 MB To header", one_megabyte_header(), everything)
