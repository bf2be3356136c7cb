"""SQL helpers shared by dispatch's repositories."""
