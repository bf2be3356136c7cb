"""Matching an inbound e-mail to a lead: signed plus-address or Message-ID, nothing else."""

from __future__ import annotations

import email
from email.message import Message

from shared.messaging.inbound_match import lead_of_headers, lead_of_message
from shared.messaging.lead_tokens import LeadTokens

TOKENS = LeadTokens("test-key")
LEAD = "0b9e4c1a-7f3d-4c1e-9a5b-2d6f8e0a1b2c"
OTHER = "5d2c1b0a-9e8f-4a7b-8c6d-5e4f3a2b1c0d"


def _message(headers: dict[str, str]) -> Message:
    raw = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\nBonjour\r\n"
    return email.message_from_string(raw)


def test_plus_address_among_the_recipients() -> None:
    address = TOKENS.reply_address(LEAD, mailbox="ingest@vo-leads.test")
    assert lead_of_message(_message({"To": f"Garage <{address}>"}), TOKENS) == LEAD
    assert lead_of_message(_message({"To": "x@y.test", "Cc": address}), TOKENS) == LEAD
    # Forwarded or redirected: the envelope recipient is kept by the delivering server.
    assert lead_of_message(_message({"To": "x@y.test", "Delivered-To": address}), TOKENS) == LEAD


def test_in_reply_to_then_references_newest_first() -> None:
    ours = TOKENS.message_id(LEAD, message_key="a1", domain="vo-leads.test")
    older = TOKENS.message_id(OTHER, message_key="a0", domain="vo-leads.test")
    only_references = _message(
        {"To": "ingest@vo-leads.test", "References": f"{older} <x@gmail.com> {ours}"}
    )
    assert lead_of_message(only_references, TOKENS) == LEAD
    replying = _message({"To": "ingest@vo-leads.test", "In-Reply-To": older, "References": ours})
    assert lead_of_message(replying, TOKENS) == OTHER


def test_the_plus_address_wins_over_the_thread() -> None:
    address = TOKENS.reply_address(LEAD, mailbox="ingest@vo-leads.test")
    thread = TOKENS.message_id(OTHER, message_key="a0", domain="vo-leads.test")
    assert lead_of_message(_message({"To": address, "In-Reply-To": thread}), TOKENS) == LEAD


def test_forged_or_foreign_clues_attach_nothing() -> None:
    foreign = LeadTokens("attacker-key")
    forged = _message(
        {
            "To": foreign.reply_address(LEAD, mailbox="ingest@vo-leads.test"),
            "In-Reply-To": foreign.message_id(LEAD, message_key="z", domain="vo-leads.test"),
            "References": f"<m-z.{LEAD}@vo-leads.test> <abc@mail.leboncoin.fr>",
        }
    )
    assert lead_of_message(forged, TOKENS) is None
    assert lead_of_message(_message({"To": f"ingest+{LEAD}@vo-leads.test"}), TOKENS) is None
    assert lead_of_message(_message({"Subject": "Nouveau message"}), TOKENS) is None


def test_from_decoded_headers() -> None:
    ours = TOKENS.message_id(LEAD, message_key="a1", domain="vo-leads.test")
    assert lead_of_headers({"to": "ingest@vo-leads.test", "in-reply-to": ours}, TOKENS) == LEAD
    address = TOKENS.reply_address(LEAD, mailbox="ingest@vo-leads.test")
    assert lead_of_headers({"x-original-to": address}, TOKENS) == LEAD
    assert lead_of_headers({"to": "ingest@vo-leads.test"}, TOKENS) is None
