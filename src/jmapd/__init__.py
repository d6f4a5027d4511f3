"""jmapd: a JMAP server (RFC 8620 core, RFC 8621 mail)."""

__version__ = "0.1.0"
