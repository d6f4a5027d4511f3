"""Mail in (LMTP behind an MTA such as Postfix, or SMTP from local relays) and, later, out."""
