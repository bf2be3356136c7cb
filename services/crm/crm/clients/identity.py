"""Which keys identify a person: E.164 phone and case-folded e-mail, except relay addresses
(platform aliases such as ``…@messagerie.lacentrale.fr``) that stand for many people."""

from __future__ import annotations

RELAY_EMAIL_DOMAINS: frozenset[str] = frozenset(
    {"messagerie.lacentrale.fr", "reply.leboncoin.fr", "messagerie.leboncoin.fr"}
)


def identity_email(email: str | None) -> str | None:
    """The e-mail as an identity key, or None for a relay address."""
    if email is None:
        return None
    domain = email.rpartition("@")[2]
    return None if domain in RELAY_EMAIL_DOMAINS else email
