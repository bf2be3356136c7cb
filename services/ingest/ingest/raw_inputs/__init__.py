"""Raw inputs: the exact bytes each source sent, kept for audit and re-parsing, then purged."""
