"""Phone numbers to E.164 with ``phonenumbers``; France is the default region.

French numbers written the usual ways (``06 12 34 56 78``, ``06.12.34.56.78``,
``+33 6 12 34 56 78``, ``0033…``) skip ``phonenumbers.parse`` (~60 µs, the costliest step of a
lead's validation): the number is built from its digits and still checked by
``phonenumbers.is_valid_number``. ``tests/shared/test_normalize.py`` checks with property-based
tests that both paths give the same answer.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "FR"

_SEPARATORS = str.maketrans("", "", " .-")
_FRENCH = re.compile(r"(?:0|\+33|0033)([1-9][0-9]{8})")


def _french_number(raw: str) -> phonenumbers.PhoneNumber | None:
    """The number of a plainly written French number, None for anything else."""
    match = _FRENCH.fullmatch(raw.translate(_SEPARATORS))
    if match is None:
        return None
    return phonenumbers.PhoneNumber(country_code=33, national_number=int(match.group(1)))


def normalize_phone(raw: str | None, *, region: str = DEFAULT_REGION) -> str | None:
    """E.164 (``+33612345678``) for a valid number, None for a missing or invalid one."""
    if raw is None or not raw.strip():
        return None
    number = _french_number(raw) if region == "FR" else None
    if number is None:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
