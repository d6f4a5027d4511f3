"""LMTP (RFC 2033) on aiosmtpd: how an MTA such as Postfix hands jmapd the mail it accepted.

Every worker serves the TCP address (SO_REUSEPORT: the kernel spreads connections); a Unix
socket is served by one worker of the data directory at a time. Recipients are accounts (by
name), their aliases, the same with a +tag, or a domain's catch-all
(`jmapd account alias`); an unknown one is refused at RCPT (550 5.1.1). After DATA each
recipient gets its own reply, 250 only once the message is committed in its Inbox;
trouble that may pass (a busy database, a full disk) is 452 4.3.x, so the MTA tries again.
SIZE is announced in LHLO and enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from aiosmtpd.lmtp import LMTP

from ..config import host_name
from ..store.base import Busy
from .deliver import NoInbox, Outcome, deliver, with_trace

if TYPE_CHECKING:
    from ..http.app import Server

log = logging.getLogger("jmapd.lmtp")
# aiosmtpd logs every connection and command at INFO; jmapd logs each delivery itself.
logging.getLogger("mail.log").setLevel(logging.WARNING)
HELD: list[Any] = []  # the lock of the Unix socket this process serves, while it lives


class GroupCommit:
    """Deliveries that arrive while others are being committed wait and go into the next
    commit together (deliver.py): one fsync for many messages. Each waits for its own
    outcome: nobody is answered before their message is durable."""

    def __init__(self, server: Server, most: int = 64) -> None:
        self.server, self.most = server, most
        self.waiting: list[tuple[str, bytes, asyncio.Future[Outcome]]] = []
        self.committing = False
        self.task: asyncio.Future[None] | None = None

    async def deliver(self, account_id: str, raw: bytes) -> dict[str, int]:
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.waiting.append((account_id, raw, done))
        if not self.committing:
            self.committing = True
            self.task = asyncio.ensure_future(self._commit())
        outcome = await done
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _commit(self) -> None:
        server = self.server
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[: self.most], self.waiting[self.most :]
                try:
                    outcomes = await anyio.to_thread.run_sync(
                        deliver, server.store, server.blobs, [(a, raw) for a, raw, _ in batch],
                        limiter=server.engine,
                    )  # fmt: skip
                except Exception as e:  # each waiter is told
                    outcomes = [e] * len(batch)
                for (_, _, done), outcome in zip(batch, outcomes, strict=True):
                    if not done.done():
                        done.set_result(outcome)
        finally:
            self.committing = False


class Handler:
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
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        """One reply per recipient (RFC 2033 §4.2), in the order of their RCPTs."""
        replies = [await self._deliver(envelope.mail_from or "", rcpt, envelope.original_content)
                   for rcpt in envelope.rcpt_tos]  # fmt: skip
        return "\r\n".join(replies)

    async def _deliver(self, mail_from: str, recipient: str, raw: bytes) -> str:
        server = self.server
        try:
            account = await self._account(recipient)
            if account is None:  # removed since RCPT
                return f"550 5.1.1 <{recipient}>: no such user here"
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
        server.announce({account: changed})
        log.info("delivered a message of %d octets to %s", len(raw), account)
        return f"250 2.1.5 <{recipient}> delivered"


async def serve(server: Server, where: str) -> asyncio.AbstractServer | None:
    """Listen for LMTP at HOST:PORT or a Unix socket path (`unix:/path` or `/path`); None
    when another worker holds the Unix socket."""
    loop = asyncio.get_running_loop()
    handler = Handler(server)
    hostname = host_name(server.config)  # once: it may ask the resolver

    def protocol() -> LMTP:
        return LMTP(handler, hostname=hostname, ident="jmapd",
                    data_size_limit=server.config.max_message_size, enable_SMTPUTF8=True,
                    decode_data=False, loop=loop)  # fmt: skip

    path = where.removeprefix("unix:")
    if path.startswith("/"):
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
    host, _, port = where.rpartition(":")
    return await loop.create_server(protocol, host.strip("[]") or None, int(port),
                                    reuse_port=True)  # fmt: skip
