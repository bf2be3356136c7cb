"""The sellers' own views (seller token): their open assignments with deadlines, and the feed of
the messages sent to their tool (to catch up on missed webhooks)."""
