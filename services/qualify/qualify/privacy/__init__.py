"""Qualify's share of data protection beyond erasure, export (shared) and the do-not-contact list
(``qualify.suppression``): rectification."""
