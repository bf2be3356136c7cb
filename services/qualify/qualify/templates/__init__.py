"""Templates of the messages to the prospect: French defaults in code, admins' overrides per
site and per source in the database (the most specific wins), variables, rendering, preview."""
