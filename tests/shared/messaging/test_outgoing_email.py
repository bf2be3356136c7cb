"""The outgoing e-mail: parts, headers, 7-bit wire form with French accents intact."""

from __future__ import annotations

import email
from collections.abc import Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import pytest

from shared.messaging.inbound_match import lead_of_message
from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.outgoing_email import (
    Unsubscribe,
    as_email_message,
    render_email,
    text_to_html,
)

TOKENS = LeadTokens("test-key")
LEAD = "0b9e4c1a-7f3d-4c1e-9a5b-2d6f8e0a1b2c"
TEXT = "Bonjour Hélène,\n\nMerci pour votre intérêt pour la Citroën C3 ; à très vite !\n\nGaëlle"


UNSUBSCRIBE = Unsubscribe.for_lead(
    TOKENS,
    LEAD,
    mailbox="desabonnement@vo-leads.test",
    url_base="https://leads.example.fr/v1/unsubscribe",
)


def _email(
    *,
    to: str = "Hélène Gaël <prospect@vo-leads.test>",
    html: str | None = None,
    unsubscribe: Unsubscribe | None = UNSUBSCRIBE,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    auto_reply: bool = False,
) -> EmailMessage:
    return as_email_message(
        render_email(
            tokens=TOKENS,
            lead_id=LEAD,
            message_key="m42",
            sender="Garage Dupont Automobiles <concession@vo-leads.test>",
            to=to,
            reply_mailbox="concession@vo-leads.test",
            subject="Votre demande : Citroën C3 (réf. AD-1)",
            text=TEXT,
            html=html,
            date=datetime(2026, 12, 2, 10, 30, tzinfo=UTC),
            unsubscribe=unsubscribe,
            in_reply_to=in_reply_to,
            references=references,
            auto_reply=auto_reply,
        )
    )


def _wire(message: EmailMessage) -> bytes:
    return message.as_bytes()


def test_wire_form_is_7bit_and_parses_back_to_the_same_text() -> None:
    raw = _wire(_email())
    raw.decode("ascii")  # nothing 8-bit on the wire
    assert b"\r\n" in raw
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "Votre demande : Citroën C3 (réf. AD-1)"
    assert parsed["To"].addresses[0].display_name == "Hélène Gaël"
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT
    assert "Citro&amp;" not in html.get_content()
    assert "Merci pour votre intérêt pour la Citroën C3" in html.get_content()
    assert parsed.get_content_type() == "multipart/alternative"


def test_headers_tie_the_message_to_the_lead() -> None:
    message = _email()
    assert TOKENS.ref_of_message_id(str(message["Message-ID"])) is not None
    assert str(message["Message-ID"]).startswith("<m-m42.")
    assert str(message["Message-ID"]).endswith("@vo-leads.test>")
    assert TOKENS.lead_of_address(str(message["Reply-To"])) == LEAD
    assert message["Date"] == "Wed, 02 Dec 2026 10:30:00 +0000"
    assert message["Auto-Submitted"] is None


def test_list_unsubscribe_mailto_and_one_click_https() -> None:
    message = _email()
    header = str(message["List-Unsubscribe"])
    mailto, url = (part.strip().strip("<>") for part in header.split(","))
    assert mailto.startswith("mailto:desabonnement+u")
    assert mailto.endswith("?subject=unsubscribe")
    assert TOKENS.lead_of_address(mailto.removeprefix("mailto:").split("?")[0]) == LEAD
    assert url.startswith("https://leads.example.fr/v1/unsubscribe/")
    assert TOKENS.lead_of_token(url.rsplit("/", 1)[1]) == LEAD
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Long headers are folded on the wire, and unfold to the same value.
    parsed = email.message_from_bytes(_wire(message), policy=policy.default)
    assert " ".join(str(parsed["List-Unsubscribe"]).split()) == " ".join(header.split())


def test_without_unsubscribe_there_is_no_list_header() -> None:
    message = _email(unsubscribe=None)
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None


def test_answering_a_prospect_message_threads_and_marks_auto_replies() -> None:
    message = _email(
        in_reply_to="<abc@mail.leboncoin.fr>",
        references=["<root@mail.leboncoin.fr>"],
        auto_reply=True,
    )
    assert message["In-Reply-To"] == "<abc@mail.leboncoin.fr>"
    assert message["References"] == "<root@mail.leboncoin.fr> <abc@mail.leboncoin.fr>"
    assert message["Auto-Submitted"] == "auto-replied"


def test_an_html_body_given_is_used() -> None:
    message = _email(html="<p>Bonjour <b>Hélène</b></p>")
    html = message.get_body(("html",))
    assert html is not None
    assert html.get_content().strip() == "<p>Bonjour <b>Hélène</b></p>"


def test_a_reply_to_our_message_matches_the_lead() -> None:
    ours = _email()
    reply = EmailMessage()
    reply["From"] = "prospect@vo-leads.test"
    reply["To"] = str(ours["Reply-To"])
    reply["In-Reply-To"] = str(ours["Message-ID"])
    reply.set_content("Oui, je passe samedi.")
    assert lead_of_message(reply, TOKENS) == LEAD


def test_text_to_html_escapes() -> None:
    html = text_to_html("Prix < 10 000 € & reprise\n\nÀ bientôt")
    assert "<p>Prix &lt; 10 000 € &amp; reprise</p>" in html
    assert "<p>À bientôt</p>" in html


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="https"):
        Unsubscribe(mailto="a@b.test", url="http://leads.example.fr/u")
    with pytest.raises(ValueError, match="one e-mail address"):
        _email(to="a@b.test, c@d.test")


@pytest.mark.parametrize(
    "to",
    [
        "prospect@vo-leads.test",
        "o'brien+lead.1@sub-domain.vo-leads.test",
        "a..b@vo-leads.test",
        "Hélène Gaël <prospect@vo-leads.test>",
        '"Durand, C." <prospect@vo-leads.test>',
    ],
)
def test_the_recipient_is_read_as_the_address_parser_reads_it(to: str) -> None:
    """A bare addr-spec is taken as it is, without the parser; any other as the parser reads it
    (the same envelope and To either way)."""
    name, address = email.utils.getaddresses([to])[0]
    outgoing = render_email(
        tokens=TOKENS,
        lead_id=LEAD,
        message_key="m42",
        sender="Garage Dupont <concession@vo-leads.test>",
        to=to,
        reply_mailbox="concession@vo-leads.test",
        subject="Votre demande",
        text=TEXT,
        date=datetime(2026, 12, 2, 10, 30, tzinfo=UTC),
    )
    assert outgoing.recipients == (address,)
    parsed = as_email_message(outgoing)["To"]
    assert (parsed.addresses[0].display_name, parsed.addresses[0].addr_spec) == (name, address)
