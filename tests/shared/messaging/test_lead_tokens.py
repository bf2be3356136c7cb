"""Signed lead tokens in plus-addresses and Message-IDs: issued, read back, never forged."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import pytest
from hypothesis import given, strategies as st
from pydantic import SecretStr

from shared.messaging.lead_tokens import LeadTokens, MessageRef

TOKENS = LeadTokens(SecretStr("test-key"))
LEAD = "0b9e4c1a-7f3d-4c1e-9a5b-2d6f8e0a1b2c"


def test_reply_address_round_trip_and_length() -> None:
    address = TOKENS.reply_address(LEAD, mailbox="concession@vo-leads.test")
    local, _, domain = address.partition("@")
    assert domain == "vo-leads.test"
    assert local.startswith("concession+u")
    assert len(local) <= 64
    assert TOKENS.lead_of_address(address) == LEAD
    assert TOKENS.lead_of_address(f'"Garage Dupont" <{address}>') == LEAD
    # Mail systems may change the case of the local part.
    assert TOKENS.lead_of_address(address.upper()) == LEAD


def test_message_id_round_trip() -> None:
    message_id = TOKENS.message_id(LEAD, message_key="msg_42", domain="vo-leads.test")
    assert message_id.startswith("<m-msg_42.")
    assert message_id.endswith("@vo-leads.test>")
    assert TOKENS.ref_of_message_id(message_id) == MessageRef(lead_id=LEAD, message_key="msg_42")
    assert TOKENS.lead_of_message_id(message_id.strip("<>")) == LEAD


def test_another_key_does_not_verify() -> None:
    address = LeadTokens("other-key").reply_address(LEAD, mailbox="concession@vo-leads.test")
    assert TOKENS.lead_of_address(address) is None
    message_id = LeadTokens("other-key").message_id(LEAD, message_key="m1", domain="x.test")
    assert TOKENS.lead_of_message_id(message_id) is None


def test_a_token_cannot_be_moved_to_another_lead() -> None:
    token = TOKENS.token(LEAD)
    other = str(uuid.uuid4())
    forged = TOKENS.token(other).split(".")[0] + "." + token.split(".")[1]
    assert TOKENS.lead_of_token(forged) is None
    assert TOKENS.lead_of_token(token) == LEAD


@pytest.mark.parametrize(
    "value",
    [
        "concession@vo-leads.test",
        "concession+@vo-leads.test",
        f"concession+{LEAD}@vo-leads.test",  # the bare lead id: unsigned
        "concession+u" + "a" * 26 + "." + "a" * 16 + "@vo-leads.test",
        "concession+u" + "a" * 26 + "@vo-leads.test",
        "not an address",
        "",
    ],
)
def test_unsigned_or_malformed_addresses_give_nothing(value: str) -> None:
    assert TOKENS.lead_of_address(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "<20261202132349.E16845320CA@mail.vo-leads.test>",
        f"<m-key.{LEAD}@vo-leads.test>",
        "<m-key.u.aaaaaaaaaaaaaaaa@vo-leads.test>",
        "<m-a.b.c.d@vo-leads.test>",
        "",
    ],
)
def test_foreign_or_forged_message_ids_give_nothing(value: str) -> None:
    assert TOKENS.ref_of_message_id(value) is None


@given(st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s != ""))
def test_any_lead_id_round_trips(lead_id: str) -> None:
    assert TOKENS.lead_of_token(TOKENS.token(lead_id)) == lead_id


def test_uuids_use_the_compact_form_only_when_canonical() -> None:
    assert TOKENS.token(LEAD).startswith("u")
    upper = LEAD.upper()
    assert TOKENS.token(upper).startswith("s")
    assert TOKENS.lead_of_token(TOKENS.token(upper)) == upper


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="empty"):
        LeadTokens("")
    with pytest.raises(ValueError, match="user@domain"):
        TOKENS.reply_address(LEAD, mailbox="concession+x@vo-leads.test")
    with pytest.raises(ValueError, match="64"):
        TOKENS.reply_address(LEAD, mailbox="a-very-long-mailbox-name-for-replies@vo-leads.test")
    with pytest.raises(ValueError, match="message_key"):
        TOKENS.message_id(LEAD, message_key="has.dot", domain="vo-leads.test")


def test_a_leads_token_is_computed_once_for_all_the_headers_that_carry_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An e-mail carries its lead's token in its Message-ID, Reply-To, List-Unsubscribe and
    Return-Path: one HMAC for all (before: one each, a tenth of the sender's CPU per e-mail)."""
    tokens = LeadTokens(b"k" * 32)
    macs: list[bytes] = []
    original = hmac.new

    def counting(key: bytes, message: bytes, digestmod: Any) -> hmac.HMAC:
        macs.append(message)
        return original(key, message, digestmod)

    monkeypatch.setattr(hmac, "new", counting)
    lead = str(uuid.uuid4())
    other = str(uuid.uuid4())
    addresses = {tokens.reply_address(lead, mailbox="concession@vo-leads.test") for _ in range(3)}
    ids = {tokens.message_id(lead, message_key=key, domain="vo-leads.test") for key in "ab"}
    tokens.token(other)
    assert len(macs) == 2  # one per lead
    assert len(addresses) == 1
    assert {tokens.lead_of_message_id(value) for value in ids} == {lead}  # verified afresh
    assert tokens.lead_of_address(addresses.pop()) == lead
    assert len(macs) == 5
    assert tokens.token(lead) == LeadTokens(b"k" * 32).token(lead)
