"""The prospect's replies (e-mail, SMS) and the bounces of our e-mails, matched to their leads."""
