"""RFC 5322/MIME messages as RFC 8621 Email properties; stdlib `email`, no storage, no I/O."""

from jmapd.mail.headers import form_allowed
from jmapd.mail.parse import Message, parse_message
from jmapd.mail.thread_keys import ThreadingKeys

__all__ = ["Message", "ThreadingKeys", "form_allowed", "parse_message"]
