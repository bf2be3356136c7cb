"""Contact normalisation for the adapters: phones to E.164 by the shared rule
(``shared.normalize.phone``: France first, then the overseas regions, foreign numbers kept with
their country), e-mails validated and case-folded, relay addresses flagged. Invalid values are
kept raw (phones) or dropped (e-mails), never guessed."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from shared.normalize import (
    normalize_email as shared_normalize_email,
    normalize_phone as shared_normalize_phone,
)
from shared.normalize.phone import phones_in_text as phones_in_text  # the adapters' import

RELAY_DOMAINS = ("messagerie.lacentrale.fr",)
_SPACES = re.compile(r"\s+")
_NAME_MAX = 100


def clean(text: str | None, max_length: int = 10_000) -> str | None:
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text).replace("\xa0", " ").replace("\u202f", " ")
    text = _SPACES.sub(" ", text).strip()
    return text[:max_length] or None


def normalize_phone(raw: str | None) -> tuple[str | None, str | None]:
    """(E.164, None) for a valid number; (None, raw) for an invalid one; (None, None) if empty.
    The shared rule: France first, then the overseas regions."""
    text = clean(raw, 60)
    if text is None:
        return None, None
    e164 = shared_normalize_phone(text)
    return (e164, None) if e164 is not None else (None, text)


def normalize_email(raw: str | None) -> str | None:
    """The shared rule, after the wrappers e-mails put around addresses (``mailto:``, ``<>``)."""
    text = clean(raw, 320)
    if text is None:
        return None
    return shared_normalize_email(text.removeprefix("mailto:").strip("<>()[] ,;."))


def is_relay(email: str) -> bool:
    return email.rsplit("@", 1)[-1] in RELAY_DOMAINS


def contact_from_raw(
    *,
    first_name: str | None,
    last_name: str | None,
    full_name: str | None,
    email: str | None,
    phone: str | None,
) -> dict[str, Any]:
    first = clean(first_name, _NAME_MAX)
    last = clean(last_name, _NAME_MAX)
    full = clean(full_name, 200)
    if full is None and (first or last):
        full = " ".join(part for part in (first, last) if part)
    address = normalize_email(email)
    relay = address is not None and is_relay(address)
    e164, phone_raw = normalize_phone(phone)
    return {
        "first_name": first,
        "last_name": last,
        "full_name": full,
        "email": address,
        "email_key": None if relay or address is None else address.casefold(),
        "email_is_relay": relay,
        "phone": e164,
        "phone_raw": phone_raw,
    }


_EMAIL_IN_TEXT = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


def emails_in_text(text: str) -> list[str]:
    found: list[str] = []
    for candidate in _EMAIL_IN_TEXT.findall(text):
        address = normalize_email(candidate)
        if address and address not in found:
            found.append(address)
    return found


_PRICE = re.compile(
    r"(\d{1,3}(?:[ .]\d{3})+|\d+)(?:,\d{1,2})?\s?(?:€|EUR\b|euros?\b)", re.IGNORECASE
)


def price_eur(text: str | None) -> int | None:
    """``12 990 €``, ``12.990 €``, ``12990,00 €``, ``26990 EUR`` → 12990 (NBSP already spaces)."""
    if not text:
        return None
    text = text.replace("\xa0", " ").replace("\u202f", " ")
    match = _PRICE.search(text)
    if match is None:
        return None
    digits = re.sub(r"\D", "", match.group(1))
    if not digits or len(digits) > 8:
        return None
    return int(digits)


def int_in(text: str | None, maximum: int) -> int | None:
    if not text:
        return None
    digits = re.sub(r"\D", "", text.split(",")[0])
    if not digits or len(digits) > 9:
        return None
    value = int(digits)
    return value if value <= maximum else None
