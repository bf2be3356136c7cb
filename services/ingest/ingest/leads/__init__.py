"""Canonical leads: accept, de-duplicate by (source, source_ref), publish ``lead.received.v1``."""
