"""Phones, e-mails, prices and MIME decoding rules of the adapters."""

from __future__ import annotations

import pytest

from ingest.canonical import Contact
from ingest.canonical.contacts import normalize_email, normalize_phone, phones_in_text, price_eur
from ingest.sources.email.mime import decode_bytes, html_to_text, parse_mime


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.17.13.08.46", "+33617130846"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("01 42 68 53 00", "+33142685300"),
        ("+32 470 12 34 56", "+32470123456"),  # Belgian mobile, kept with its country
        ("+262 692 12 34 56", "+262692123456"),
        ("0692 12 34 56", "+262692123456"),  # La Réunion typed nationally
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("0696 12 34 56", "+596696123456"),  # Martinique
        ("0694 20 12 34", "+594694201234"),  # Guyane
        ("0639 01 23 45", "+262639012345"),  # Mayotte (same country code as La Réunion)
    ],
)
def test_phones_normalise_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == (e164, None)


@pytest.mark.parametrize("raw", ["0612", "12", "pas de téléphone", "+33 6 12"])
def test_invalid_phones_are_kept_raw_not_guessed(raw: str) -> None:
    assert normalize_phone(raw) == (None, raw)


def test_contact_keeps_relay_address_but_not_as_key() -> None:
    relay = Contact.from_raw(email="4F1C@Messagerie.LaCentrale.fr", phone="0612")
    assert relay.email == "4f1c@messagerie.lacentrale.fr"
    assert relay.email_is_relay
    assert relay.email_key is None
    assert relay.phone is None
    assert relay.phone_raw == "0612"
    assert relay.reachable
    real = Contact.from_raw(email=" Jean.Dupont@Gmail.COM ", first_name="Jean", last_name="Dupont")
    assert real.email == real.email_key == "jean.dupont@gmail.com"
    assert real.full_name == "Jean Dupont"


@pytest.mark.parametrize("raw", ["pas-une-adresse", "a@", "@b.fr", "jean@@x.fr", ""])
def test_invalid_emails_are_dropped(raw: str) -> None:
    assert normalize_email(raw) is None


@pytest.mark.parametrize(
    ("text", "price"),
    [
        ("12 990 €", 12990),
        ("12\xa0990\xa0€", 12990),
        ("12\u202f990 €", 12990),
        ("Prix : 12.990 €", 12990),
        ("12990,00 €", 12990),
        ("26990 EUR", 26990),
        ("9 900 euros", 9900),
        ("sans prix", None),
    ],
)
def test_french_prices(text: str, price: int | None) -> None:
    assert price_eur(text) == price


def test_phones_found_in_free_text() -> None:
    text = "Mr DELFORGE ( 06 85 71 07 46 ) ou au bureau 01.42.68.53.00"
    assert phones_in_text(text) == ["+33685710746", "+33142685300"]


def test_iso_8859_1_is_read_as_cp1252() -> None:
    assert decode_bytes(b"12 990 \x80", "iso-8859-1") == "12 990 €"
    assert decode_bytes(b"caf\xe9", "unknown-charset") == "caf\ufffd"


def test_html_only_bodies_become_text_with_entities_decoded() -> None:
    html = (
        "<p>Prix&nbsp;: 9&nbsp;900&nbsp;&euro;</p><script>x()</script>"
        "<p>&laquo; Bonjour &raquo;</p>"
    )
    assert html_to_text(html) == "Prix : 9 900 €\n« Bonjour »"


def test_encoded_headers_are_decoded() -> None:
    raw = (
        b"From: =?utf-8?q?Fran=C3=A7ois?= <F@Example.fr>\r\n"
        b"Subject: =?UTF-8?B?Tm91dmVhdSBtZXNzYWdlIHBvdXIgdm90cmUgYW5ub25jZSDCqyBQZXVnZW90IMK7?=\r\n"
        b"\r\nbody"
    )
    mail = parse_mime(raw)
    assert mail.subject == "Nouveau message pour votre annonce « Peugeot »"
    assert mail.from_name == "François"
    assert mail.from_addr == "f@example.fr"
