"""Settling an input: its outcomes become leads, an ignored record, or a quarantine entry."""
