"""Delivery status notifications (RFC 3464): what the sender is told of recipients the queue
gave up on, as a multipart/report put in the sender's Inbox."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid

STATUS = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")


def status_code(reply: str) -> str:
    """The enhanced status code (RFC 3463) of an SMTP reply, or the generic one of its class."""
    parts = reply.split(" ", 2)
    if len(parts) > 1 and STATUS.fullmatch(parts[1]):
        return parts[1]
    return f"{reply[:1] if reply[:1] in '245' else '5'}.0.0"


def _date(when: float) -> str:
    return format_datetime(datetime.fromtimestamp(when, UTC))


def _fields(*pairs: tuple[str, str]) -> Message:
    block = Message()
    for name, value in pairs:
        block[name] = value
    return block


def delivery_report(host: str, to: str, original: bytes, arrival: float,
                    failed: list[tuple[str, str]]) -> bytes:  # fmt: skip
    """A DSN (RFC 3464 §2) for the recipients that `failed` (address, final SMTP reply): a
    human-readable part, the machine-readable message/delivery-status, and the headers of the
    message that was not delivered (text/rfc822-headers, RFC 6522)."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(original)
    report = EmailMessage(policy=policy.SMTP)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{host}>"
    report["To"] = to  # the return path the message was sent with
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = _date(time.time())
    report["Message-ID"] = make_msgid(domain=host)
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834 §5: never to be answered
    if headers.get("Message-ID"):
        report["In-Reply-To"] = headers["Message-ID"]
    lines = [f"This is the mail system at {host}.", "",
             "Your message could not be delivered to these recipients:", ""]  # fmt: skip
    lines += [f"<{address}>: {reply}" for address, reply in failed]
    report.set_content("\n".join(lines) + "\n")
    report.make_mixed()
    report.replace_header("Content-Type", "multipart/report; report-type=delivery-status")
    status = EmailMessage()
    status.set_type("message/delivery-status")
    blocks: list[Message | str] = [
        _fields(("Reporting-MTA", f"dns; {host}"), ("Arrival-Date", _date(arrival)))
    ]
    blocks += [_fields(("Final-Recipient", f"rfc822; {address}"), ("Action", "failed"),
                       ("Status", status_code(reply)), ("Diagnostic-Code", f"smtp; {reply}"))
               for address, reply in failed]  # fmt: skip
    status.set_payload(blocks)  # a list of field blocks (RFC 3464 §2.1)
    report.attach(status)
    returned = EmailMessage()
    returned.set_type("text/rfc822-headers")
    header_section = re.split(rb"\r?\n\r?\n", original, maxsplit=1)[0]
    returned.set_payload(header_section.decode("ascii", "replace") + "\r\n")
    report.attach(returned)
    return report.as_bytes(policy=policy.SMTP)
