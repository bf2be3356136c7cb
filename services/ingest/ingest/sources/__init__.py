"""Source adapters: each turns what a source sends into lead drafts, ignores or quarantines."""
