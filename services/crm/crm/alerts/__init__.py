"""Managers' alerts feed: leads at risk of breaching their SLA, sellers' disabled webhooks."""
