"""Qualification and disqualification: the operator's decision that closes a lead."""
