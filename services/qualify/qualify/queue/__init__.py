"""The operators' work queue, fed by ``lead.received.v1``."""
