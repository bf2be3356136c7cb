"""Operators' own figures (and every operator's, for managers)."""
