"""Phone numbers to E.164 (FR default) and case-folded e-mails."""

from __future__ import annotations

import pytest

from shared.normalize import normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("01 42 68 53 00", "+33142685300"),
        ("+32 470 12 34 56", "+32470123456"),  # Belgian mobile stays Belgian
        ("12", None),
        ("not a phone", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_phone(raw: str | None, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


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
