"""Managers' SLA figures: per-lead facts from the events, business-time durations, summary,
funnel and breaches (docs/sla.md)."""
