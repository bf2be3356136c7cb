"""Focused tests of the e-mail parsers (MIME helpers, classifier, La Centrale and contact rules);
the fixture corpus (test_email_corpus.py) covers whole messages."""

from __future__ import annotations

import pytest

from ingest.sources.email.mime import decode_header, parse_mime


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("Nouveau message pour votre\r\n annonce E1", "Nouveau message pour votre annonce E1"),
        ("Nouveau message pour votre\n\tannonce", "Nouveau message pour votre\tannonce"),
        ("PEUGEOT 3008 II 1.5 BLUEHDI\r\n 130 S&S", "PEUGEOT 3008 II 1.5 BLUEHDI 130 S&S"),
        ("=?utf-8?q?Rapport_appels_manqu?=\r\n =?utf-8?q?=C3=A9s?=", "Rapport appels manqués"),
        ("=?utf-8?q?ligne_1=0Aligne_2?=", "ligne 1 ligne 2"),
        ("caf\udcc3\udca9\r\n cr\udcc3\udca8me", "café crème"),  # raw UTF-8 bytes (RFC 6532)
        ("caf\udce9", "café"),  # raw cp1252 bytes
    ],
)
def test_decode_header_unfolds_and_decodes(raw: str, decoded: str) -> None:
    assert decode_header(raw) == decoded


def test_every_header_is_unfolded() -> None:
    mail = parse_mime(
        b"From: La Centrale\r\n <no_reply@lacentrale.fr>\r\n"
        b"Subject: Nouveau message pour votre\r\n annonce E111222333 - PEUGEOT 3008 II\r\n"
        b" 1.5 BLUEHDI 130\r\nDate: Tue, 20 Jan 2026\r\n 09:14:52 +0100\r\n\r\nBonjour"
    )
    assert mail.subject == (
        "Nouveau message pour votre annonce E111222333 - PEUGEOT 3008 II 1.5 BLUEHDI 130"
    )
    assert mail.from_addr == "no_reply@lacentrale.fr"
    assert mail.date is not None
    assert all("\n" not in value and "\r" not in value for value in mail.headers.values())
