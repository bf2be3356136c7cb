"""Contact attempts: calls, SMS and e-mails, checked against the legal contact rules."""
