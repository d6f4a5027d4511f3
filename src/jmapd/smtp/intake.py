"""Mail in on aiosmtpd: LMTP (RFC 2033) from an MTA such as Postfix, and plain SMTP (RFC 5321)
from a local relay. One Handler serves both; they differ only in the replies after DATA.

Every worker serves a TCP address (SO_REUSEPORT: the kernel spreads connections); a Unix
socket is served by one worker of the data directory at a time. Recipients are accounts (by
name), their aliases, the same with a +tag, or a domain's catch-all
(`jmapd account alias`); an unknown one is refused at RCPT (550 5.1.1). After DATA, LMTP
answers each recipient on its own, 250 only once the message is committed in its Inbox;
trouble that may pass (a busy database, a full disk) is 452 4.3.x, so the MTA tries again.
SMTP has one reply for all recipients (`smtp_reply`). SIZE is announced in LHLO/EHLO and
enforced (552 5.3.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, AnyStr

import anyio.to_thread
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from ..config import host_name
from ..store.base import Busy
from ..types.email.store import Parsed
from .deliver import NoInbox, Outcome, deliver, prepare, with_trace

if TYPE_CHECKING:
    from ..http.app import Server

log = logging.getLogger("jmapd.lmtp")
# aiosmtpd logs every connection and command at INFO; jmapd logs each delivery itself.
logging.getLogger("mail.log").setLevel(logging.WARNING)
HELD: list[Any] = []  # the lock of the Unix socket this process serves, while it lives

# aiosmtpd's own replies that lack an enhanced status code (RFC 3463), and the ones sent
# instead. Those marked True end a DATA: LMTP owes one per recipient (RFC 2033 §4.2).
ENHANCED: dict[str, tuple[str, bool]] = {
    "552 Error: message size exceeds fixed maximum message size":
        ("552 5.3.4 Message size exceeds fixed maximum message size", False),
    "552 Error: Too much mail data": ("552 5.3.4 Message too big for system", True),
    "500 Line too long (see RFC5321 4.5.3.1.6)": ("500 5.6.0 Line too long", True),
}  # fmt: skip
# RFC 5321 §4.5.3.1 asks for no limits where possible: a message with a longer line than
# §4.5.3.1.6's 1000 octets (common enough in real mail) is taken, up to this many octets.
LINE_LIMIT = 1 << 20


class GroupCommit:
    """Deliveries that arrive while others are being committed wait and go into the next
    commit together (deliver.py): one fsync for many messages. Each is parsed and its bytes
    made durable first, on its own thread, beside the commit in flight. Each waits for its
    own outcome: nobody is answered before their message is durable."""

    def __init__(self, server: Server, most: int = 64) -> None:
        self.server, self.most = server, most
        self.waiting: list[tuple[str, bytes, Parsed, asyncio.Future[Outcome]]] = []
        self.committing = False
        self.task: asyncio.Future[None] | None = None

    async def deliver(self, account_id: str, raw: bytes) -> dict[str, int]:
        server = self.server
        parsed = await anyio.to_thread.run_sync(prepare, server.blobs, raw, limiter=server.engine)
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.waiting.append((account_id, raw, parsed, done))
        if not self.committing:
            self.committing = True
            self.task = asyncio.ensure_future(self._commit())
        outcome = await done
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _commit(self) -> None:
        server = self.server
        unique = bool(server.config.duplicate_suppression)
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[: self.most], self.waiting[self.most :]
                try:
                    outcomes = await anyio.to_thread.run_sync(
                        deliver, server.store, server.blobs, [m[:3] for m in batch],
                        unique, server.outbound.replier, limiter=server.engine,
                    )  # fmt: skip
                    if server.outbound.replier.queued:  # a vacation reply
                        server.outbound.replier.queued = False
                        server.outbound.wake()
                except Exception as e:  # each waiter is told
                    outcomes = [e] * len(batch)
                for (*_, done), outcome in zip(batch, outcomes, strict=True):
                    if not done.done():
                        done.set_result(outcome)
        finally:
            self.committing = False


def smtp_reply(replies: list[str]) -> str:
    """SMTP's one reply after DATA from the replies each recipient would get in LMTP.

    A 250 hands the relay's responsibility for the message to us for every recipient (RFC
    5321 §6.1), and jmapd keeps no queue of its own to finish a delivery later, as Postfix's
    smtpd does (it answers 250 once its queue file is on disk, then delivers per recipient).
    So a recipient whose delivery failed for now makes the whole message 4xx: the relay
    keeps it and sends it again to all its recipients (Postfix's smtp client defers every
    recipient of a transaction on a 4xx after DATA), and the recipients already delivered
    get it twice, unless `duplicate_suppression` is on. Answering 250 instead would lose the
    message for that recipient: the loss is worse than the duplicate. This is the very
    weakness LMTP exists to fix (RFC 2033 §1); a relay that can speak LMTP should. A
    recipient that failed for good beside ones delivered still gets 250: a retry cannot
    help it, and it is logged.
    """
    failed = [r for r in replies if not r.startswith("250")]
    if not failed:
        return f"250 2.0.0 OK: delivered to {len(replies)} recipient(s)"
    transient = [r for r in failed if r.startswith("4")]
    if transient:
        return transient[0]
    if len(failed) == len(replies):
        return failed[0]
    for reply in failed:
        log.warning("accepted over SMTP, not delivered: %s", reply)
    return f"250 2.0.0 OK: delivered to {len(replies) - len(failed)} recipient(s)"


class Handler:
    """What to do with each RCPT and DATA, for LMTP and SMTP alike."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.group = GroupCommit(server)

    async def _account(self, address: str) -> str | None:
        account: str | None = await anyio.to_thread.run_sync(
            self.server.store.account_for_address, address
        )
        return account

    async def handle_RCPT(self, smtp: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        try:
            account = await self._account(address)
        except Exception:
            log.exception("looking up a recipient failed")
            return "451 4.3.0 Temporary trouble looking up the recipient; try again later"
        if account is None:
            return f"550 5.1.1 <{address}>: no such user here"
        envelope.accounts = [*getattr(envelope, "accounts", []), account]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        """LMTP: one reply per recipient (RFC 2033 §4.2), in the order of their RCPTs;
        SMTP: one for all."""
        mail_from, raw = envelope.mail_from or "", envelope.original_content
        replies = await asyncio.gather(*(self._deliver(mail_from, rcpt, account, raw)
                                         for rcpt, account in zip(envelope.rcpt_tos,
                                                                  envelope.accounts,
                                                                  strict=True)))  # fmt: skip
        return "\r\n".join(replies) if isinstance(smtp, LMTP) else smtp_reply(replies)

    async def _deliver(self, mail_from: str, recipient: str, account: str, raw: bytes) -> str:
        """To the account found at RCPT (one removed since has no Inbox: 452)."""
        server = self.server
        try:
            changed = await self.group.deliver(account, with_trace(raw, mail_from, recipient))
        except NoInbox:
            return f"452 4.2.0 <{recipient}>: the account has no Inbox; try again later"
        except Busy:
            return f"452 4.3.0 <{recipient}>: the mailbox is busy; try again later"
        except Exception as e:  # the recipient's boundary: the MTA tries again later
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                return "452 4.3.1 Insufficient system storage; try again later"
            log.exception("a delivery failed")
            return f"451 4.3.0 <{recipient}>: local error; try again later"
        if changed:
            server.announce({account: changed})
            log.info("delivered a message of %d octets to %s", len(raw), account)
        else:
            log.info("a message to %s was in its Inbox already: not stored again", account)
        return f"250 2.1.5 <{recipient}> delivered"


class EnhancedReplies(SMTP):
    """aiosmtpd's session, with enhanced status codes in its own replies and one reply per
    recipient when LMTP ends a DATA with an error."""

    line_length_limit = LINE_LIMIT

    async def push(self, status: AnyStr) -> None:
        better = ENHANCED.get(status) if isinstance(status, str) else None
        if better is None:
            await super().push(status)
            return
        reply, ends_data = better
        recipients = self.envelope.rcpt_tos if self.envelope is not None else []
        each = len(recipients) if ends_data and isinstance(self, LMTP) else 1
        await super().push("\r\n".join([reply] * max(each, 1)))


class LMTPSession(EnhancedReplies, LMTP):
    pass


class SMTPSession(EnhancedReplies):
    pass


async def serve(server: Server, where: str, handler: Handler,
                session: type[EnhancedReplies]) -> asyncio.AbstractServer | None:  # fmt: skip
    """Listen at HOST:PORT or a Unix socket path (`unix:/path` or `/path`); None when another
    worker holds the Unix socket."""
    loop = asyncio.get_running_loop()
    hostname = host_name(server.config)  # once: it may ask the resolver

    def protocol() -> EnhancedReplies:
        return session(handler, hostname=hostname, ident="jmapd",
                       data_size_limit=server.config.max_message_size, enable_SMTPUTF8=True,
                       decode_data=False, loop=loop)  # fmt: skip

    path = where.removeprefix("unix:")
    if path.startswith("/"):
        return await _serve_unix(loop, protocol, path)
    host, _, port = where.rpartition(":")
    return await loop.create_server(protocol, host.strip("[]") or None, int(port),
                                    reuse_port=True)  # fmt: skip


async def _serve_unix(loop: asyncio.AbstractEventLoop, protocol: Callable[[], EnhancedReplies],
                      path: str) -> asyncio.AbstractServer | None:  # fmt: skip
    lock = open(path + ".lock", "a")  # noqa: SIM115 (held for the life of the process)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a socket left by a process that is gone
    listener = await loop.create_unix_server(protocol, path)
    Path(path).chmod(0o660)
    HELD.append(lock)
    return listener


async def serve_mail(server: Server) -> list[asyncio.AbstractServer]:
    """The LMTP and SMTP listeners the configuration asks for, sharing one Handler (and so
    one group commit)."""
    handler, config = Handler(server), server.config
    wanted = [(str(config.lmtp), LMTPSession), (str(config.smtp), SMTPSession)]
    listeners = [await serve(server, where, handler, session)
                 for where, session in wanted if where]  # fmt: skip
    return [listener for listener in listeners if listener is not None]
