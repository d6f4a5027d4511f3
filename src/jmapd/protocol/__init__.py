"""The RFC 8620 machinery: request shapes, errors, references, registry and the generic engine."""
