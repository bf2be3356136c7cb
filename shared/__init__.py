"""What every service of the VO lead back office shares: settings, database, events, bus, outbox,
idempotent consumers, errors, auth, logging, metrics and normalisation.

A service imports from here and never from another service.
"""
