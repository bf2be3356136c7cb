"""The IMAP poller: configured mailboxes read with aioimaplib, processed messages moved."""
