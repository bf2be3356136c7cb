"""Claims: an operator's lease on a lead (claim, renew, release; expiry frees the lead)."""
