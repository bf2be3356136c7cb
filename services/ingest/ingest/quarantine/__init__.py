"""Quarantine (inputs no parser could read, with the reason; retried after a parser fix) and
the ignored inputs (known non-leads)."""
