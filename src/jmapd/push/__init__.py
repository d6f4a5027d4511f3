"""Push: the state-change bus and the EventSource endpoint (RFC 8620 §7)."""
