"""Keyed hashes of a lead's contacts, made as crm makes them (so objections match)."""

from __future__ import annotations

from shared.events.payloads import ContactV1
from shared.normalize import normalize_email, normalize_phone
from shared.privacy import contact_hash


def contact_hashes(contact: ContactV1, key: bytes) -> list[str]:
    """Keyed hashes of the normalised phone (E.164) and e-mail (case-folded), as crm makes."""
    keys = []
    if contact.phone and (phone := normalize_phone(contact.phone)):
        keys.append(phone)
    if contact.email and (email := normalize_email(contact.email)):
        keys.append(email)
    return sorted({contact_hash(value, key) for value in keys})
