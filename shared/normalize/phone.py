"""Phone numbers to E.164 with ``phonenumbers``; France is the default region."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "FR"


def normalize_phone(raw: str | None, *, region: str = DEFAULT_REGION) -> str | None:
    """E.164 (``+33612345678``) for a valid number, None for a missing or invalid one."""
    if raw is None or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
