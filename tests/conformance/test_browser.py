"""A real browser as the client (issue 13 item 1): headless Chromium loads a page from another
loopback origin, trades the user's password for an access token (a CORS fetch), then opens an
EventSource and an `<img>` of an uploaded PNG with it — the two things a browser cannot send
an Authorization header with. The page reports what it sees to the server that served it."""

from __future__ import annotations

import base64
import queue
import shutil
import struct
import subprocess
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conformance.notes import fresh_account
from tests.conformance.test_blobs import upload
from tests.conformance.test_eventsource import create_note
from tests.conftest import QuietHandler, Server, serve_http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>jmapd from another origin</title>
<body>
<script>
const q = new URLSearchParams(location.search);
const jmap = q.get("jmap"), basic = "Basic " + q.get("auth");
const account = q.get("account"), blob = q.get("blob");
function report(value) {
  fetch("/report", {method: "POST", body: JSON.stringify(value)});
}
function expand(template, values) {
  return template.replace(/{(\\w+)}/g, (_, name) => encodeURIComponent(values[name]));
}
function withToken(url, token) {
  return url + (url.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token);
}
(async () => {
  try {
    const session = await (await fetch(jmap + "/.well-known/jmap",
                                       {headers: {Authorization: basic}})).json();
    const issued = await fetch(jmap + "/jmap/access-token",
                               {method: "POST", headers: {Authorization: basic}});
    const token = (await issued.json()).accessToken;
    report({issued: issued.status});
    const source = new EventSource(withToken(
      expand(session.eventSourceUrl, {types: "*", closeafter: "no", ping: "0"}), token));
    source.onopen = () => report({open: true});
    source.onerror = () => report({sourceError: source.readyState});
    source.addEventListener("state", (e) => report({state: JSON.parse(e.data)}));
    const download = expand(session.downloadUrl,
                            {accountId: account, blobId: blob, name: "dot.png", type: "image/png"});
    const forged = token.slice(0, -2) + (token.endsWith("AA") ? "BB" : "AA");
    for (const [name, url] of [["img", withToken(download, token)],
                               ["forged", withToken(download, forged)]]) {
      const img = new Image();
      img.onload = () => report({[name]: [img.naturalWidth, img.naturalHeight]});
      img.onerror = () => report({[name]: "error"});
      img.src = url;
      document.body.appendChild(img);
    }
  } catch (e) {
    report({exception: String(e)});
  }
})();
</script>
"""


def png(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


class Page:
    """The other origin: serves the page, and collects what it reports."""

    def __init__(self) -> None:
        self.reports: queue.Queue[dict[str, Any]] = queue.Queue()
        self.held: list[dict[str, Any]] = []
        reports = self.reports

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                reports.put(orjson.loads(body))
                self.send_response(204)
                self.end_headers()

        self.httpd, self.origin = serve_http(Handler)

    def wait_for(self, key: str, timeout: float = 30) -> Any:
        """The value of the first report not yet taken that has `key` (failing on a page
        exception)."""
        deadline = time.monotonic() + timeout
        while True:
            for report in self.held:
                if key in report:
                    self.held.remove(report)
                    return report[key]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the page never reported {key!r}: {self.held}")
            try:
                report = self.reports.get(timeout=left)
            except queue.Empty:
                continue
            assert "exception" not in report, report
            self.held.append(report)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[Page, Any]]:
    if CHROMIUM is None:  # never skipped: a real browser is the client here
        pytest.fail("Chromium is not installed (scripts/test installs Debian's chromium as "
                    "root; else apt-get install chromium)")  # fmt: skip
    page = Page()
    processes: list[subprocess.Popen[bytes]] = []

    def open_page(query: dict[str, str]) -> None:
        url = page.origin + "/?" + urllib.parse.urlencode(query)
        processes.append(subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-proxy-server", "--disable-extensions", f"--user-data-dir={tmp_path}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip

    yield page, open_page
    for process in processes:
        process.kill()
        process.wait()
    page.httpd.shutdown()
    page.httpd.server_close()


def test_a_browser_on_another_origin_streams_and_shows_an_attachment(
    server: Server, browser_page: tuple[Page, Any]
) -> None:
    page, open_page = browser_page
    client, account = fresh_account(server, "browser")
    name = client.session()["username"]
    image = png(3, 2)
    r = upload(client, account, image, "image/png")
    assert r.status_code == 201, r.text
    auth = base64.b64encode(f"{name}:{server.passwords[name]}".encode()).decode()
    open_page({"jmap": server.base, "auth": auth, "account": account, "blob": r.json()["blobId"]})

    assert page.wait_for("issued", timeout=60) == 200
    assert page.wait_for("open") is True
    create_note(client, account)
    state = page.wait_for("state")
    assert state["@type"] == "StateChange" and set(state["changed"]) == {account}
    assert "Note" in state["changed"][account]
    reported = {key: page.wait_for(key) for key in ("img", "forged")}
    assert reported == {"img": [3, 2], "forged": "error"}  # the token is what lets it load
