"""Direct delivery to a recipient domain's MX (issue 12 item 4; RFC 5321 §5.1, RFC 7505):
jmapd asks a DNS server the test runs (dnspython answering over UDP) and connects to the
addresses it names, where an aiosmtpd server of the test takes the mail. On both backends."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from aiosmtpd.controller import Controller

from tests.conformance.test_submission import (
    Mail,
    Sink,
    draft,
    mailboxes,
    ok,
    settled,
    submit,
    wait_for,
)
from tests.conftest import free_port, jmapd, start_server, stop_server

# name → (type, values); a name not here does not exist (NXDOMAIN)
ZONE: dict[str, list[tuple[str, str]]] = {
    "good.example.": [("MX", "10 mx.good.example.")],
    "mx.good.example.": [("A", "127.0.0.1")],
    # the preferred MX has an address nothing listens on: the next one is tried
    "backup.example.": [("MX", "5 dead.backup.example."), ("MX", "20 mx.good.example.")],
    "dead.backup.example.": [("A", "127.0.0.2")],
    "nomail.example.": [("MX", "0 .")],
    # no MX: the domain's own address (RFC 5321 §5.1)
    "plain.example.": [("A", "127.0.0.1")],
}


class DNSServer:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            if name not in ZONE:
                response.set_rcode(dns.rcode.NXDOMAIN)
            values = [v for t, v in ZONE.get(name, []) if t == kind]
            if values:
                response.answer.append(dns.rrset.from_text(name, 60, "IN", kind, *values))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def mx(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mail]:
    data = tmp_path_factory.mktemp("mx")
    jmapd(data, "account", "add", "sam@example.com", "--password", "sam-secret")
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    resolver = DNSServer()
    server = start_server(data, {
        "JMAPD_DNS_SERVER": f"127.0.0.1:{resolver.port}", "JMAPD_MX_PORT": str(port),
        "JMAPD_QUEUE_RETRY": "1",
    })  # fmt: skip
    client = server.client_with(("sam@example.com", "sam-secret"))
    try:
        yield Mail(server, sink, "", {"sam@example.com": client})
    finally:
        stop_server(server)
        controller.stop()
        resolver.close()


def send_to(mx: Mail, address: str, subject: str) -> dict[str, Any]:
    sam = mx.clients["sam@example.com"]
    account = mx.account("sam@example.com")
    email_id = draft(sam, account, subject, to=[{"name": None, "email": address}])
    id = submit(sam, account, email_id)[0][1]["created"]["s"]["id"]
    return settled(sam, account, id)


def test_mail_goes_to_the_domains_mx(mx: Mail) -> None:
    done = send_to(mx, "ann@good.example", "By MX")
    assert done["deliveryStatus"]["ann@good.example"]["smtpReply"] == (
        "250 2.0.0 Ok: queued as 4F00D"
    )
    got = mx.sink.to("ann@good.example")
    assert len(got) == 1 and got[0].mail_from == "sam@example.com"


def test_an_mx_that_does_not_answer_is_passed_over(mx: Mail) -> None:
    done = send_to(mx, "bo@backup.example", "Backup MX")
    assert done["deliveryStatus"]["bo@backup.example"]["delivered"] == "unknown"
    assert len(mx.sink.to("bo@backup.example")) == 1


def test_a_domain_without_mx_gets_it_at_its_own_address(mx: Mail) -> None:
    send_to(mx, "cy@plain.example", "Implicit MX")
    assert len(mx.sink.to("cy@plain.example")) == 1


def test_a_null_mx_and_a_missing_domain_fail_at_once_with_a_dsn(mx: Mail) -> None:
    sam = mx.clients["sam@example.com"]
    account = mx.account("sam@example.com")
    null = send_to(mx, "di@nomail.example", "Null MX")
    assert null["deliveryStatus"]["di@nomail.example"] == {
        "smtpReply": "556 5.1.10 The domain nomail.example accepts no mail",
        "delivered": "no", "displayed": "unknown"}  # fmt: skip
    missing = send_to(mx, "ed@missing.example", "No domain")
    assert missing["deliveryStatus"]["ed@missing.example"]["smtpReply"] == (
        "550 5.1.2 The domain missing.example does not exist"
    )
    assert len(null["dsnBlobIds"]) == 1 and len(missing["dsnBlobIds"]) == 1
    inbox = mailboxes(sam, account)["inbox"]
    reports = wait_for(lambda: ok(sam, "Email/query", {"accountId": account, "filter": {
        "inMailbox": inbox, "subject": "Undelivered Mail"}})["ids"])  # fmt: skip
    assert len(reports) == 2
