"""Phone numbers to E.164 with ``phonenumbers``: the one rule of every place that reads a phone
(ingest's sources, crm's look-ups and objections, dispatch's contact hashes, the SMS provider's
inbound senders, numbers found in free text) and the one place that tells a mobile (qualify's
SMS). ``tests/system/test_one_phone_rule.py`` fails if ``phonenumbers`` is imported elsewhere.

France first, then the overseas regions: a number written nationally (``0692 45 67 89``) that is
not a valid French number is read in La Réunion, Guadeloupe, Martinique, Guyane, Mayotte and
Saint-Pierre-et-Miquelon in turn (``+262692456789``); a number with its country code
(``+32…``, ``0033…``) keeps it. Anything else is invalid (``None``), never guessed.

French numbers written the usual ways (``06 12 34 56 78``, ``06.12.34.56.78``,
``+33 6 12 34 56 78``, ``0033…``) skip ``phonenumbers.parse`` (~60 µs, the costliest step of a
lead's validation): the number is built from its digits and still checked by
``phonenumbers.is_valid_number``. ``tests/shared/test_normalize.py`` checks with property-based
tests that the fast path gives what the library alone gives.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

DEFAULT_REGION = "FR"
# La Réunion, Guadeloupe, Martinique, Guyane, Mayotte, Saint-Pierre-et-Miquelon: their numbers
# share the French trunk prefix 0, so a national number is tried there once France refuses it.
OVERSEAS_REGIONS = ("RE", "GP", "MQ", "GF", "YT", "PM")
REGIONS = (DEFAULT_REGION, *OVERSEAS_REGIONS)
MAX_PHONE_CHARS = 60

_SEPARATORS = str.maketrans("", "", " .-")
_FRENCH = re.compile(r"(?:0|\+33|0033)([1-9][0-9]{8})")
_SPACES = str.maketrans({"\xa0": " ", "\u202f": " ", "\t": " "})


def _french_number(raw: str) -> tuple[phonenumbers.PhoneNumber, bool] | None:
    """The number of a plainly written French number and whether it was written nationally
    (trunk 0, no country code); None for anything else."""
    digits = raw.translate(_SEPARATORS)
    match = _FRENCH.fullmatch(digits)
    if match is None:
        return None
    number = phonenumbers.PhoneNumber(country_code=33, national_number=int(match.group(1)))
    return number, digits.startswith("0") and not digits.startswith("00")


def _has_country_code(text: str) -> bool:
    return text.startswith("+") or text.startswith("00")


def _parsed(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_text(raw: str) -> str:
    """The number as written, ready to parse: NFC, no-break spaces as spaces, a ``tel:`` scheme
    removed, blanks trimmed."""
    text = unicodedata.normalize("NFC", raw).translate(_SPACES).strip()
    if text[:4].lower() == "tel:":
        text = text[4:].strip()
    return text


def normalize_phone(raw: str | None) -> str | None:
    """E.164 (``+33612345678``) for a valid number, None for a missing or invalid one. France
    first, then the overseas regions for a number without a country code."""
    if raw is None or len(raw) > MAX_PHONE_CHARS:
        return None
    text = phone_text(raw)
    if not text:
        return None
    regions: tuple[str, ...] = REGIONS
    plain = _french_number(text)
    if plain is not None:
        number, national = plain
        if phonenumbers.is_valid_number(number):
            return _e164(number)
        if not national:
            return None  # +33 or 0033 written: France was asked for, and refuses it
        regions = OVERSEAS_REGIONS  # France was just asked (the same answer as parse's)
    for region in regions:
        parsed = _parsed(text, region)
        if parsed is not None:
            return _e164(parsed)
        if _has_country_code(text):
            break  # an explicit country code: other default regions change nothing
    return None


_MOBILE = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def is_mobile(e164: str) -> bool:
    """An E.164 number that can receive an SMS (French 06/07, overseas mobiles, foreign
    mobiles)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE


# A national number (trunk 0 + 9 digits) as people write it: 0692 45 67 89, 06.92.45.67.89…,
# not glued to a word or another number (``ref E0692456789`` is a reference).
_NATIONAL_NUMBER = re.compile(r"(?<![\w+])0(?:[ \t\u00a0\u202f./-]{0,2}\d){9}(?!\w)")
_OVERSEAS_TRIES = 20  # candidates tried with the overseas regions per text (bounds the cost)
_FRANCE = "+33"


def _matches(text: str, region: str) -> list[tuple[int, int, str]]:
    return [
        (
            match.start,
            match.end,
            phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164),
        )
        for match in phonenumbers.PhoneNumberMatcher(text, region)
    ]


def phones_in_text(text: str) -> list[str]:
    """E.164 numbers found in free text, in text order: France first, then the overseas regions
    for a national number that is not a valid French one (``0692 45 67 89`` → +262692456789):
    each such number is read by ``normalize_phone``, as a phone field would be."""
    spans: list[tuple[int, int, str]] = []
    try:
        spans.extend(_matches(text, DEFAULT_REGION))
        tries = 0
        for candidate in _NATIONAL_NUMBER.finditer(text):
            start, end = candidate.span()
            if any(s < end and start < e for s, e, _ in spans):
                continue  # already read as a French number
            tries += 1
            if tries > _OVERSEAS_TRIES:
                break
            e164 = normalize_phone(candidate.group())
            if e164 is not None and not e164.startswith(_FRANCE):
                spans.append((start, end, e164))  # France's answer is the matcher's, above
    except Exception:  # a library bug on odd input must not fail the parse
        pass
    numbers: list[str] = []
    for _, _, e164 in sorted(spans):
        if e164 not in numbers:
            numbers.append(e164)
    return numbers
