"""Ingest's share of data protection beyond erasure and export (shared): rectification."""
