"""Phone numbers to E.164 (France, then the overseas regions) and case-folded e-mails."""

from __future__ import annotations

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings, strategies as st

from shared.normalize import is_mobile, normalize_email, normalize_phone
from shared.normalize.email import PLAIN_ADDRESS, plain_address


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("01 42 68 53 00", "+33142685300"),
        ("+32 470 12 34 56", "+32470123456"),  # Belgian mobile stays Belgian
        ("0692 45 67 89", "+262692456789"),  # La Réunion written nationally
        ("06.92.45.67.89", "+262692456789"),
        ("0692\u00a045\u00a067\u00a089", "+262692456789"),
        ("tel:0692456789", "+262692456789"),
        ("+262 692 45 67 89", "+262692456789"),
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("0696 12 34 56", "+596696123456"),  # Martinique
        ("0694 20 12 34", "+594694201234"),  # Guyane
        ("0639 01 23 45", "+262639012345"),  # Mayotte (La Réunion's country code)
        ("+33 692 45 67 89", None),  # France asked for explicitly: not guessed elsewhere
        ("0033 692 45 67 89", None),
        ("12", None),
        ("not a phone", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_phone(raw: str | None, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("e164", "mobile"),
    [
        ("+33612345678", True),
        ("+33751234567", True),
        ("+262692456789", True),  # La Réunion
        ("+32470123456", True),
        ("+33123456789", False),  # a landline
        ("+262262123456", False),
        ("not a number", False),
    ],
)
def test_is_mobile(e164: str, mobile: bool) -> None:
    assert is_mobile(e164) is mobile


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Camille.Durand@Example.FR", "camille.durand@example.fr"),
        ("  jean@exemple.fr ", "jean@exemple.fr"),
        ("no-at-sign", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


# The e-mail fast path must never accept what email-validator refuses, nor normalise differently.
_EMAILISH = st.sampled_from(
    [
        *"abcXYZ019._%+-@!#$&'*/=?^`{|}~\"() ,;:<>[]\\",
        *("\u00e9", "\u00df", "\u212a", "\u017f", "\u0130", "\uff0e"),  # accents, Kelvin, long s, …
        *("--", "xn--", ".fr", ".test", ".localhost"),
    ]
)


def _library(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized.casefold()
    except EmailNotValidError:
        return None


@settings(max_examples=1000, deadline=None)
@given(st.lists(_EMAILISH, max_size=40).map("".join))
def test_email_fast_path_agrees_with_the_library_on_arbitrary_text(address: str) -> None:
    fast = plain_address(address)
    assert fast is None or fast == _library(address)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(PLAIN_ADDRESS, fullmatch=True))
def test_email_fast_path_agrees_with_the_library_on_what_it_accepts(address: str) -> None:
    fast = plain_address(address)
    assert fast is None or fast == _library(address)


@pytest.mark.parametrize(
    "address",
    [
        "a@b.test",  # special-use domains: the library refuses them
        "a@mail.localhost",
        "a@ab--cd.fr",  # reserved R-LDH label
        "a@b.c0m",  # numeric TLD
        "x" * 65 + "@exemple.fr",  # local part over 64
        "a..b@exemple.fr",
        ".a@exemple.fr",
        "a@\u212aelvin.fr",  # Kelvin sign: not the ASCII K
    ],
)
def test_email_fast_path_defers_what_it_cannot_vouch_for(address: str) -> None:
    assert plain_address(address) is None


def test_email_fast_path_takes_plain_addresses() -> None:
    assert (
        plain_address("Camille.Durand+vo@Garage-Martin.fr") == "camille.durand+vo@garage-martin.fr"
    )


# The French phone fast path must give exactly what phonenumbers.parse gives, asked in France
# and then in each overseas region as the rule says (the rule spelt out with the library alone).
def _parsed(raw: str) -> str | None:
    for region in ("FR", "RE", "GP", "MQ", "GF", "YT", "PM"):
        try:
            number = phonenumbers.parse(raw.strip(), region)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if raw.strip().startswith(("+", "00")):
            return None
    return None


_FRENCH_WRITTEN = st.builds(
    lambda prefix, digits, separator: prefix + separator.join(digits),
    st.sampled_from(["0", "+33", "0033", "+33 ", "00 33 ", "+330", "33", "+", ""]),
    st.lists(st.text("0123456789", min_size=1, max_size=3), min_size=1, max_size=6),
    st.sampled_from(["", " ", ".", "-", "  ", "/"]),
)


@settings(max_examples=1500, deadline=None)
@given(_FRENCH_WRITTEN)
def test_french_phone_fast_path_agrees_with_phonenumbers(raw: str) -> None:
    assert normalize_phone(raw) == _parsed(raw)


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"0[1-9][0-9]{8}", fullmatch=True))
def test_french_phone_fast_path_agrees_on_every_national_number(raw: str) -> None:
    assert normalize_phone(raw) == _parsed(raw)


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"0(?:69[0-9]|639|590|596|594|262|269|508)[0-9]{6}", fullmatch=True))
def test_overseas_national_numbers_agree_with_phonenumbers(raw: str) -> None:
    assert normalize_phone(raw) == _parsed(raw)
