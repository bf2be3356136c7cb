"""E-mail leads: MIME decoding, a classifier, and one parser per known layout."""
