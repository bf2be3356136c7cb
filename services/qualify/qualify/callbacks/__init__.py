"""Call-backs the prospect asked for: scheduled, replaced, cancelled, listed per operator."""
