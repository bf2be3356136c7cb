"""Clients: identity resolution across sources, timeline, search."""
