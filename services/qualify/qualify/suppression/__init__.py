"""The do-not-contact list as qualify sees it: keyed hashes received from crm
(``privacy.contact-suppressed.v1``). Answering the person's own enquiry stays allowed; marketing
consents cannot be recorded for them."""
