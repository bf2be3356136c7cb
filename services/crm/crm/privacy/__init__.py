"""GDPR rights: erasure requests tracked across the four services, with their legal due date."""
