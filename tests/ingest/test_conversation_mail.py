"""Reading an inbound e-mail as part of a lead's conversation (no servers): replies matched by
our signed plus-address or Message-ID, their new text, STOP and unsubscribe, bounces, and what
is left to the lead parsers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from ingest.conversations.email import (
    EmailBounce,
    EmailReply,
    Unanswerable,
    read_conversation_mail,
)
from ingest.conversations.reply_text import MAX_REPLY_CHARS, asks_to_stop, new_text
from shared.messaging.lead_tokens import LeadTokens
from tests.support.mail import dealer_answer

TOKENS = LeadTokens("conversation-test-key")
DEALER = "concession@vo-leads.test"
PROSPECT = "helene.gael@exemple.fr"
LEAD = str(uuid.uuid4())
MESSAGE_KEY = str(uuid.uuid4())


def first_answer(lead_id: str = LEAD, message_key: str = MESSAGE_KEY) -> EmailMessage:
    return dealer_answer(
        TOKENS,
        lead_id,
        message_key,
        to=PROSPECT,
        date=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        dealer=DEALER,
    )


def reply(
    text: str,
    *,
    to: str | None = None,
    in_reply_to: str | None = None,
    subject: str = "Re: Votre demande : Citroën C3",
    message_id: str | None = "<reply-1@exemple.fr>",
    **headers: str,
) -> bytes:
    message = EmailMessage()
    message["From"] = f"Hélène Gaël <{PROSPECT}>"
    message["To"] = to or TOKENS.reply_address(LEAD, mailbox=DEALER)
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message.as_bytes()


def test_a_reply_to_the_plus_address_names_the_lead_and_the_message_it_answers() -> None:
    ours = str(first_answer()["Message-ID"])
    found = read_conversation_mail(
        reply("Oui, 17 h me convient.\n\nLe lun. 1 déc. 2026 à 11:00, Garage Dupont "
              f"<{DEALER}> a écrit :\n> Bonjour Hélène,\n> Nous vous rappelons", in_reply_to=ours),
        TOKENS,
    )  # fmt: skip
    assert isinstance(found, EmailReply)
    assert found.lead_id == LEAD
    assert found.answers == MESSAGE_KEY
    assert found.text == "Oui, 17 h me convient."
    assert found.sender == PROSPECT
    assert found.subject == "Re: Votre demande : Citroën C3"
    assert found.email_message_id == "<reply-1@exemple.fr>"
    assert found.stop_request is False


def test_our_message_id_alone_is_enough() -> None:
    """A client that answers to the From address (not the Reply-To) still quotes our id."""
    ours = str(first_answer()["Message-ID"])
    found = read_conversation_mail(reply("D'accord", to=DEALER, in_reply_to=ours), TOKENS)
    assert isinstance(found, EmailReply)
    assert (found.lead_id, found.answers) == (LEAD, MESSAGE_KEY)


def test_unsigned_or_forged_clues_are_not_replies() -> None:
    forged = DEALER.replace("@", f"+{TOKENS.token(LEAD)[:-2]}xx@")
    other_key = LeadTokens("someone-else").reply_address(LEAD, mailbox=DEALER)
    for to in (DEALER, forged, other_key):
        assert read_conversation_mail(reply("Bonjour", to=to), TOKENS) is None


def test_the_id_is_stable_across_redeliveries_and_distinct_per_message() -> None:
    first = read_conversation_mail(reply("Oui"), TOKENS)
    redelivered = read_conversation_mail(
        b"Received: from relay.example by mx.example; Mon, 1 Dec 2026 10:00:00 +0100\r\n"
        + reply("Oui"),
        TOKENS,
    )
    other = read_conversation_mail(reply("Oui", message_id="<reply-2@exemple.fr>"), TOKENS)
    without_id = read_conversation_mail(reply("Oui", message_id=None), TOKENS)
    assert isinstance(first, EmailReply)
    assert isinstance(redelivered, EmailReply)
    assert isinstance(other, EmailReply)
    assert isinstance(without_id, EmailReply)
    assert first.message_id == redelivered.message_id
    assert len({first.message_id, other.message_id, without_id.message_id}) == 3
    assert len(first.message_id) <= 100


@pytest.mark.parametrize(
    ("subject", "text", "stop"),
    [
        ("unsubscribe", "", True),  # our List-Unsubscribe mailto
        ("Re: Votre demande", "STOP", True),
        ("Re: Votre demande", "Stop\n\nEnvoyé de mon iPhone", True),
        ("Re: Votre demande", "stop\n-- \nHélène", True),
        ("STOP", "Merci de ne plus m'écrire", True),
        ("Re: Votre demande", "Désabonner", True),
        ("Re: Votre demande", "Ne stoppez pas, je suis intéressée", False),
        ("Re: Votre demande", "Stop ou encore ? Je rappelle demain.", False),
    ],
)
def test_stop_and_unsubscribe_replies(subject: str, text: str, stop: bool) -> None:
    assert asks_to_stop(subject, new_text(text)) is stop


def test_an_unsubscribe_mail_to_the_plus_address_is_a_stop_request() -> None:
    found = read_conversation_mail(reply("", subject="unsubscribe"), TOKENS)
    assert isinstance(found, EmailReply)
    assert found.stop_request


@pytest.mark.parametrize(
    "history",
    [
        "On Mon, Dec 1, 2026 at 11:00 AM Garage Dupont <concession@vo-leads.test> wrote:\n"
        "> Bonjour",
        "Le lun. 1 déc. 2026 à 11:00, Garage Dupont <\nconcession@vo-leads.test> a écrit :\n"
        "> Bonjour",
        "-----Original Message-----\nFrom: Garage Dupont\nSent: Monday\nBonjour Hélène",
        "-------- Message d'origine --------\nDe : Garage Dupont\nBonjour Hélène",
        "________________________________\nDe : Garage Dupont <concession@vo-leads.test>\n"
        "Envoyé : lundi 1 décembre 2026 11:00\nÀ : Hélène\nObjet : Votre demande\n\nBonjour",
        "De : Garage Dupont <concession@vo-leads.test>\nEnvoyé : lundi\nÀ : Hélène\nBonjour",
        "> Bonjour Hélène,\n> Nous vous rappelons avant 17 h.",
    ],
)
def test_quoted_history_is_stripped(history: str) -> None:
    assert new_text(f"Oui, rappelez-moi à 18 h.\n\n{history}\n") == "Oui, rappelez-moi à 18 h."


def test_inline_answers_between_quotes_are_kept() -> None:
    text = "> Quel jour vous convient ?\nJeudi.\n> À quelle heure ?\nVers 18 h.\n"
    assert new_text(text) == "Jeudi.\nVers 18 h."


def test_a_reply_that_is_only_history_keeps_its_text() -> None:
    text = "Le lun. 1 déc. 2026 à 11:00, Garage Dupont a écrit :\nBonjour Hélène"
    assert new_text(text) == text
    assert new_text("") == ""


def test_the_text_is_bounded() -> None:
    assert len(new_text("a" * (MAX_REPLY_CHARS + 10))) == MAX_REPLY_CHARS


def test_an_html_only_reply_is_read_as_text() -> None:
    message = EmailMessage()
    message["From"] = PROSPECT
    message["To"] = TOKENS.reply_address(LEAD, mailbox=DEALER)
    message["Subject"] = "Re: Votre demande"
    message.set_content(
        "<div>Je passe <b>samedi</b>.</div><div class='gmail_quote'>Le lun. 1 déc. 2026 à "
        "11:00, Garage Dupont a écrit :<blockquote>Bonjour Hélène</blockquote></div>",
        subtype="html",
    )
    found = read_conversation_mail(message.as_bytes(), TOKENS)
    assert isinstance(found, EmailReply)
    assert found.text == "Je passe samedi."


def test_an_auto_reply_to_the_plus_address_is_not_the_prospect_speaking() -> None:
    found = read_conversation_mail(
        reply("Je suis absente jusqu'au 5.", subject="Réponse automatique : Votre demande",
              Auto_Submitted="auto-replied"),
        TOKENS,
    )  # fmt: skip
    assert found == Unanswerable("auto_reply", LEAD)


def dsn(original: EmailMessage | None, *, action: str = "failed", status: str = "5.1.1") -> bytes:
    """A delivery status notification as Postfix writes it (RFC 3464), returning the original
    message's headers when given."""
    returned = "".join(f"{name}: {value}\r\n" for name, value in (original or {}).items())
    return (
        "From: MAILER-DAEMON@vo-leads.test (Mail Delivery System)\r\n"
        f"To: {TOKENS.reply_address(LEAD, mailbox=DEALER)}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <20261201100000.ABC123@vo-leads.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; vo-leads.test\r\n\r\n"
        f"Final-Recipient: rfc822; {PROSPECT}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{returned}"
        "--b1--\r\n"
    ).encode()


def test_a_bounce_of_our_message_names_it() -> None:
    found = read_conversation_mail(dsn(first_answer()), TOKENS)
    assert isinstance(found, EmailBounce)
    assert (found.lead_id, found.bounced, found.hard) == (LEAD, MESSAGE_KEY, True)
    assert (found.status, found.smtp_code) == ("5.1.1", 550)
    assert found.message_id.startswith("dsn-")
    delayed = read_conversation_mail(dsn(first_answer(), action="delayed", status="4.4.1"), TOKENS)
    assert isinstance(delayed, EmailBounce)
    assert not delayed.hard


def test_bounces_that_name_no_message_of_ours_are_recorded_as_ignored() -> None:
    foreign = EmailMessage()
    foreign["Message-ID"] = "<someone-else@example.com>"
    assert read_conversation_mail(dsn(foreign), TOKENS) == Unanswerable(
        "bounce_message_unknown",
        LEAD,  # the VERP address still names the lead
    )
    delivered = read_conversation_mail(dsn(first_answer(), action="delivered", status="2.0.0"),
                                       TOKENS)  # fmt: skip
    assert delivered == Unanswerable("delivery_report", LEAD)


def test_mail_without_our_clues_goes_to_the_lead_parsers() -> None:
    assert read_conversation_mail(reply("Bonjour", to="leads@ingest.example.fr"), TOKENS) is None
    assert read_conversation_mail(b"\x00\xff not a mail", TOKENS) is None
