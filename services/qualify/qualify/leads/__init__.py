"""A lead's life in qualify: its state machine, its claim, and the read endpoint."""
