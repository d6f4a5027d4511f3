"""The outbound queue's worker: sends what store/outbox.py holds.

- One process among all that share the store sends (elected like housekeeping); it wakes
  when a submission is queued here, when another worker's or node's commit changes
  EmailSubmission, and at least every second.
- A row goes its route: to this server's own accounts (stored in their Inbox in the same
  transaction that records it: exactly once), to the smarthost, or to the recipient domain's
  MX hosts (dnspython; RFC 5321 §5.1, null MX RFC 7505), with STARTTLS when offered, signed
  with DKIM when a key exists for the From domain (smtp/dkim.py).
- Exactly once across crashes: the row is marked handed over, and that committed, after the
  message's data is written and before the final "." (RFC 1047); a row found so after a
  restart is finished, never sent again.
- Each recipient's answer goes into the submission's deliveryStatus: 2xx relayed (delivered
  "unknown": a relay is not the final store, §7) or stored here ("yes"); 5xx, or 4xx past
  `queue_lifetime`, fails it ("no") and a DSN (RFC 3464) goes to the sender's Inbox, its blob
  in dsnBlobIds; other 4xx are tried again after `queue_retry` seconds, doubling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiosmtplib
import anyio.to_thread
import dns.asyncresolver
import dns.exception
import dns.resolver

from ..config import host_name
from ..protocol.engine.set import one_record
from ..store.base import Transaction
from ..store.outbox import Outgoing
from ..types.email.store import Parsed, parse
from .deliver import After, NoInbox, inbox_of, into_inbox, with_trace
from .dkim import Signer
from .dsn import delivery_report
from .vacation import Replier

if TYPE_CHECKING:
    from ..http.app import Server

log = logging.getLogger("jmapd.queue")

POLL = 1.0  # seconds between looks at the queue when nothing wakes the worker
CONCURRENCY = 16  # rows sent at once
LONGEST_RETRY = 4 * 3600
TIMEOUT = 60  # seconds an SMTP step may take
EIGHT_BIT = re.compile(rb"[\x80-\xff]")
ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3} ")


@dataclass(frozen=True)
class Reply:
    code: int
    text: str  # the whole reply, one line (RFC 8621 §7 smtpReply)


def reply_of(code: int, message: str) -> Reply:
    """RFC 8621 §7: a multi-line reply as one line; the enhanced status code the first line
    starts with is not repeated."""
    lines = [line.strip() for line in message.splitlines() or [""]]
    prefix = ENHANCED.match(lines[0])
    if prefix:
        lines[1:] = [line.removeprefix(prefix[0]) for line in lines[1:]]
    return Reply(code, " ".join([str(code), *lines]).strip())


def retry_after(config: Any, attempts: int) -> float:
    return float(min(config.queue_retry * 2 ** max(attempts - 1, 0), LONGEST_RETRY))


class Outbound:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.config, self.store, self.blobs = server.config, server.store, server.blobs
        self.host = host_name(self.config)
        self.signer = Signer.load(self.config)
        self.replier = Replier(self.config, self.blobs, self.host)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.woken: asyncio.Event | None = None
        self.busy: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Look at the queue now (from any thread)."""
        if self.loop is not None and self.woken is not None:
            self.loop.call_soon_threadsafe(self.woken.set)

    async def run(self) -> None:
        """Forever: while elected among the processes of this store, send what is due."""
        self.loop, self.woken = asyncio.get_running_loop(), asyncio.Event()
        while True:
            with contextlib.ExitStack() as stack:
                elected = await anyio.to_thread.run_sync(
                    lambda: stack.enter_context(self.store.exclusive("outbound"))
                )
                if elected:
                    log.info("this process sends the outbound queue")
                    await self._work()
            await asyncio.sleep(5)

    async def _work(self) -> None:
        queue = self.server.bus.subscribe_all()
        watch = asyncio.ensure_future(self._watch(queue))
        try:
            while True:
                assert self.woken is not None
                self.woken.clear()
                due = await anyio.to_thread.run_sync(self.store.due_outgoing, time.time(), 100)
                for account_id, id in due:
                    if id not in self.busy and len(self.busy) < CONCURRENCY:
                        self.busy.add(id)
                        task = asyncio.ensure_future(self._one(account_id, id))
                        self.tasks.add(task)
                        task.add_done_callback(self.tasks.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.woken.wait(), POLL)
        finally:
            watch.cancel()
            self.server.bus.unsubscribe(queue)

    async def _watch(self, queue: asyncio.Queue[Any]) -> None:
        """Submissions made by other workers and nodes wake the queue at once."""
        while True:
            changes = await queue.get()
            if any("EmailSubmission" in types for types in changes.values()):
                self.wake()

    async def _one(self, account_id: str, id: str) -> None:
        try:
            row = await anyio.to_thread.run_sync(self._row, account_id, id)
            if row is None:
                return
            if row.sending:  # handed over before a restart: it is not sent again
                reply = Reply(250, "250 2.0.0 Handed over before the server restarted")
                await self._settle(row, dict.fromkeys(_emails(row), reply))
            elif row.route == "local":
                await anyio.to_thread.run_sync(self._deliver_locally, row)
            else:
                await self._send(row)
        except Exception:
            log.exception("sending a queued message failed; it is tried again later")
            try:
                await anyio.to_thread.run_sync(self._postpone, account_id, id)
            except Exception:  # the store itself is in trouble: the row stays due
                log.exception("postponing a queued message failed")
        finally:
            self.busy.discard(id)
            self.wake()

    def _row(self, account_id: str, id: str) -> Outgoing | None:
        with self.store.read(account_id) as txn:
            rows = txn.outgoing(id=id)
        if not rows or (rows[0].next_try > time.time() and not rows[0].sending):
            return None
        return rows[0]

    def _postpone(self, account_id: str, id: str) -> None:
        with self.store.write(account_id) as txn:
            for row in txn.outgoing(id=id):
                row.attempts += 1
                row.next_try = time.time() + retry_after(self.config, row.attempts)
                txn.save_outgoing(row)

    # -- over SMTP -------------------------------------------------------------------------------

    async def _send(self, row: Outgoing) -> None:
        raw = await anyio.to_thread.run_sync(self.blobs.read, row.blob_id)
        if raw is None:
            lost = Reply(554, "554 5.3.0 The message's content was lost before it was sent")
            await self._settle(row, dict.fromkeys(_emails(row), lost))
            return
        message = self.signer.sign(raw)
        try:
            hosts = await self._hosts(row.route)
        except Refusal as e:
            await self._settle(row, dict.fromkeys(_emails(row), e.reply))
            return
        replies: dict[str, Reply] = {}
        for host, port, tls in hosts:
            replies = await self._transmit(row, message, host, port, tls)
            if not all(r.code // 100 == 4 for r in replies.values()) or row.sending:
                break  # answered, or handed over: no other host
        await self._settle(row, replies)

    async def _hosts(self, route: str) -> list[tuple[str, int, str]]:
        """(host, port, tls mode) to try in order."""
        if route == "smarthost":
            host, _, port = str(self.config.smarthost).rpartition(":")
            return [(host.strip("[]"), int(port), str(self.config.smarthost_tls))]
        resolver = self._resolver()
        mx_port = int(self.config.mx_port)
        return [(address, mx_port, "opportunistic")
                for host in await _mx(resolver, route.removeprefix("mx:"))
                for address in await _addresses(resolver, host)]  # fmt: skip

    def _resolver(self) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=not self.config.dns_server)
        if self.config.dns_server:
            address, _, port = str(self.config.dns_server).rpartition(":")
            resolver.nameservers, resolver.port = [address.strip("[]")], int(port)
        resolver.lifetime = 20
        return resolver

    async def _transmit(self, row: Outgoing, message: bytes, host: str, port: int,
                        tls: str) -> dict[str, Reply]:  # fmt: skip
        """One SMTP transaction; every recipient's reply (a connection that fails is a 4xx
        for all of those not handed over yet)."""
        smtp = _client(self.config, self.host, host, port, tls)
        recipients = row.recipients
        replies: dict[str, Reply] = {}
        try:
            await smtp.connect()
            mail_from = row.mail_from
            options = _options(mail_from)
            if EIGHT_BIT.search(message) and smtp.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
            try:
                await smtp.mail(mail_from["email"], options=options)
            except aiosmtplib.SMTPResponseException as e:
                return dict.fromkeys(_emails(row), reply_of(e.code, e.message))
            for rcpt in recipients:
                try:
                    answer = await smtp.rcpt(rcpt["email"], options=_options(rcpt))
                    replies[rcpt["email"]] = reply_of(answer.code, answer.message)
                except aiosmtplib.SMTPResponseException as e:
                    replies[rcpt["email"]] = reply_of(e.code, e.message)
            accepted = [r for r in recipients if replies[r["email"]].code // 100 == 2]
            if not accepted:
                return replies
            start = await smtp.execute_command(b"DATA")
            if start.code != 354:
                return replies | {r["email"]: reply_of(start.code, start.message) for r in accepted}
            assert smtp.protocol is not None
            smtp.protocol.write(_stuffed(message))
            if not await self._hand_over(row, accepted, replies):
                await smtp.quit()  # canceled meanwhile: the data is never ended
                return {}
            end = await smtp.execute_command(b".")
            replies.update({r["email"]: reply_of(end.code, end.message) for r in accepted})
            with contextlib.suppress(aiosmtplib.SMTPException):
                await smtp.quit()
        except (aiosmtplib.SMTPException, OSError) as e:
            smtp.close()
            if row.sending:  # handed over: the data is theirs (RFC 1047), the reply unknown
                lost = Reply(250, f"250 2.0.0 Handed over to {host}; its reply was lost")
                return dict.fromkeys(_emails(row), lost)
            failed = Reply(451, f"451 4.4.1 No delivery through {host}: {type(e).__name__}")
            return {r["email"]: replies[r["email"]] if r["email"] in replies
                    and replies[r["email"]].code // 100 == 5 else failed
                    for r in recipients}  # fmt: skip
        return replies

    async def _hand_over(self, row: Outgoing, accepted: list[dict[str, Any]],
                         replies: dict[str, Reply]) -> bool:  # fmt: skip
        """Before the final ".": the recipients refused at RCPT get their answer and leave
        the row, and the row is marked handed over; committed. False if the row is gone
        (the submission was canceled)."""
        rest = {r["email"]: replies[r["email"]] for r in row.recipients if r not in accepted}

        def mark() -> bool:
            with self.store.write(row.account_id) as txn:
                stored = txn.outgoing(id=row.id)
                if not stored:
                    return False
                if rest:  # their own row, to be settled like any other
                    others = Outgoing(**{**vars(stored[0]), "id": txn.new_id(),
                                         "recipients": [r for r in row.recipients
                                                        if r not in accepted]})  # fmt: skip
                    txn.keep_blob(row.blob_id, 0)
                    txn.enqueue(others)
                    self._settle_in(txn, others, rest)
                stored[0].recipients, stored[0].sending = accepted, True
                txn.save_outgoing(stored[0])
                _set_submission(txn, row.submission_id, undoStatus="final")
            self.server.announce_from_thread({row.account_id: txn.changed})
            return True

        if not await anyio.to_thread.run_sync(mark):
            return False
        row.recipients, row.sending = accepted, True
        return True

    # -- here ------------------------------------------------------------------------------------

    def _deliver_locally(self, row: Outgoing) -> None:
        """Into each recipient's Inbox and the sender's record of it, in one transaction."""
        raw = self.blobs.read(row.blob_id)
        if raw is None:
            lost = Reply(554, "554 5.3.0 The message's content was lost before it was sent")
            self._settle_now(row, dict.fromkeys(_emails(row), lost))
            return
        targets = {r["email"]: self.store.account_for_address(r["email"]) for r in row.recipients}
        parsed = {}
        for email, account in targets.items():
            if account is not None:
                copy = with_trace(raw, row.mail_from["email"], email)
                parsed[email] = (parse(self.blobs.put(copy), copy), copy)
        accounts = [a for a in targets.values() if a is not None]
        with self.store.write_accounts([row.account_id, *accounts]) as txns:
            sender = txns[row.account_id]
            stored = sender.outgoing(id=row.id)
            if not stored or stored[0].sending:
                return
            replies = {}
            for email, account in targets.items():
                replies[email] = (
                    _store_locally(txns[account], parsed[email][0], self.replier)
                    if account
                    else Reply(550, f"550 5.1.1 <{email}>: no such user here")
                )
            self._settle_in(sender, stored[0], replies, local=True)
            changed = {a: t.changed for a, t in txns.items() if t.changed}
        for blob_id, copy in ((p.blob_id, c) for p, c in parsed.values()):
            self.blobs.ensure(blob_id, copy)
        self.server.announce_from_thread(changed)

    # -- what became of it -------------------------------------------------------------------

    async def _settle(self, row: Outgoing, replies: dict[str, Reply]) -> None:
        await anyio.to_thread.run_sync(self._settle_now, row, replies)

    def _settle_now(self, row: Outgoing, replies: dict[str, Reply]) -> None:
        with self.store.write(row.account_id) as txn:
            stored = txn.outgoing(id=row.id)
            if stored:
                self._settle_in(txn, stored[0], replies)
        if txn.changed:
            self.server.announce_from_thread({row.account_id: txn.changed})

    def _settle_in(self, txn: Transaction, row: Outgoing, replies: dict[str, Reply],
                   local: bool = False) -> None:  # fmt: skip
        """Write each recipient's answer into the submission, fail those refused for good
        (with a DSN), keep the rest for later; the row goes when nobody is left in it."""
        now = time.time()
        submission = txn.get("EmailSubmission", [row.submission_id]).get(row.submission_id)
        status = submission["deliveryStatus"] if submission else {}
        failed: list[tuple[str, str]] = []
        waiting = []
        for rcpt in row.recipients:
            email = rcpt["email"]
            reply = replies.get(email)
            if reply is not None:
                status.setdefault(email, {"displayed": "unknown"})["smtpReply"] = reply.text
            if reply is not None and reply.code // 100 == 2:
                status[email]["delivered"] = "yes" if local else "unknown"
            elif reply is not None and reply.code // 100 == 5:
                status[email]["delivered"] = "no"
                failed.append((email, reply.text))
            elif now >= row.expires:
                text = reply.text if reply else "421 4.4.7 The message stayed in the queue too long"
                status.setdefault(email, {"displayed": "unknown", "smtpReply": text})
                status[email]["delivered"] = "no"
                failed.append((email, status[email]["smtpReply"]))
            else:
                waiting.append(rcpt)
        row.recipients, row.sending = waiting, False
        if waiting:
            row.attempts += 1
            row.next_try = now + retry_after(self.config, row.attempts)
        else:
            txn.release_blob(row.blob_id)
        txn.save_outgoing(row)
        # RFC 3464 §2: nothing is reported to a null return path (a vacation reply, a DSN)
        dsn = self._report(txn, row, failed) if failed and row.mail_from["email"] else None
        if submission is not None:
            changes: dict[str, Any] = {"deliveryStatus": status}
            if dsn is not None:
                changes["dsnBlobIds"] = [*submission["dsnBlobIds"], dsn]
            if not txn.outgoing(submission_id=row.submission_id):
                changes["undoStatus"] = "final"
            _set_submission(txn, row.submission_id, **changes)

    def _report(self, txn: Transaction, row: Outgoing, failed: list[tuple[str, str]]) -> str | None:
        """A DSN into the sender's Inbox; its blob id (None when the sender has no Inbox)."""
        original = self.blobs.read(row.blob_id) or b""
        report = delivery_report(self.host, row.mail_from["email"], original,
                                 row.send_at, failed)  # fmt: skip
        parsed = parse(self.blobs.put(report), report)
        # the Email in the Inbox holds the blob: deleting it takes the DSN's blob too
        return parsed.blob_id if _store_locally(txn, parsed).code == 250 else None


async def _mx(resolver: dns.asyncresolver.Resolver, domain: str) -> list[str]:
    """The domain's MX hosts by preference; the domain itself when it has none (RFC 5321
    §5.1); Refusal for a null MX (RFC 7505) or a domain that does not exist."""
    try:
        answer = await resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        raise Refusal(Reply(550, f"550 5.1.2 The domain {domain} does not exist")) from None
    except dns.resolver.NoAnswer:
        return [domain]
    except dns.exception.DNSException as e:
        failed = Reply(451, f"451 4.4.3 Looking up {domain} failed: {type(e).__name__}")
        raise Refusal(failed) from None
    records = sorted(answer, key=lambda r: r.preference)
    if len(records) == 1 and records[0].exchange.to_text() == ".":
        raise Refusal(Reply(556, f"556 5.1.10 The domain {domain} accepts no mail"))
    return [r.exchange.to_text(omit_final_dot=True) for r in records]


async def _addresses(resolver: dns.asyncresolver.Resolver, host: str) -> list[str]:
    """A host's addresses, IPv4 first; none when it has none (the next MX is tried)."""
    found = []
    for kind in ("A", "AAAA"):
        with contextlib.suppress(dns.exception.DNSException):
            found += [r.to_text() for r in await resolver.resolve(host, kind)]
    return found


class Refusal(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


def _emails(row: Outgoing) -> list[str]:
    return [r["email"] for r in row.recipients]


def _options(address: dict[str, Any]) -> list[str]:
    """An Address's parameters as ESMTP options; FUTURERELEASE's are the queue's own."""
    return [k if v is None else f"{k}={v}" for k, v in (address["parameters"] or {}).items()
            if k.upper() not in ("HOLDFOR", "HOLDUNTIL")]  # fmt: skip


def _stuffed(message: bytes) -> bytes:
    """DATA's content (RFC 5321 §4.5.2): CRLF line ends, leading dots doubled, ending with
    CRLF (the "." that ends it is sent apart)."""
    lines = re.split(rb"\r\n|\r|\n", message)
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


def _client(config: Any, helo: str, host: str, port: int, tls: str) -> aiosmtplib.SMTP:
    smarthost = tls != "opportunistic"
    user = str(config.smarthost_user) if smarthost else ""
    return aiosmtplib.SMTP(
        hostname=host,
        port=port,
        local_hostname=helo,
        timeout=TIMEOUT,
        username=user or None,
        password=str(config.smarthost_password) if user else None,
        use_tls=tls == "tls",
        # auto: STARTTLS when offered (required when credentials are to be sent)
        start_tls={"starttls": True, "none": False, "tls": False}.get(tls, True if user else None),
        validate_certs=smarthost,  # an MX's TLS is opportunistic (RFC 7435)
    )


def _store_locally(txn: Transaction, parsed: Parsed, after: After | None = None) -> Reply:
    try:
        inbox = inbox_of(txn)
    except NoInbox:
        return Reply(452, "452 4.2.0 The recipient has no Inbox")
    with one_record(txn):
        into_inbox(txn, parsed, inbox, after=after)
    return Reply(250, "250 2.1.5 Delivered")


def _set_submission(txn: Transaction, id: str, **changes: Any) -> None:
    submission = txn.get("EmailSubmission", [id]).get(id)
    if submission is not None and any(submission.get(k) != v for k, v in changes.items()):
        txn.put("EmailSubmission", id, {**submission, **changes})
