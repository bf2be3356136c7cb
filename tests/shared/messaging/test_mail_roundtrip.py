"""The whole mail loop on real servers: built e-mail → Postfix (scripts/smtp.sh) → Dovecot →
read back over IMAP (scripts/imap.sh); the prospect's reply comes back to the lead; a message to
an unknown mailbox comes back as a real DSN that names our Message-ID and the lead."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from shared.messaging.bounces import parse_bounce
from shared.messaging.errors import PermanentSendError
from shared.messaging.inbound_match import lead_of_message
from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.outgoing_email import Unsubscribe, as_email_message, render_email
from shared.messaging.smtp_sender import SmtpSender
from shared.messaging.wire_form import OutgoingEmail
from tests.support.mail import DEALER, PROSPECT, UNKNOWN, imap_mailbox, require_smtp

pytestmark = [pytest.mark.smtp, pytest.mark.imap]

TOKENS = LeadTokens("roundtrip-test-key")


def _arguments(lead_id: str, to: str) -> dict[str, Any]:
    return {
        "tokens": TOKENS,
        "lead_id": lead_id,
        "message_key": uuid.uuid4().hex,
        "sender": f"Garage Dupont Automobiles <{DEALER}>",
        "to": f"Hélène Gaël <{to}>",
        "reply_mailbox": DEALER,
        "subject": "Votre demande : Citroën C3, réf. AD-1",
        "text": "Bonjour Hélène,\n\nMerci pour votre intérêt. Gaëlle vous rappelle à 17 h.\n",
        "date": datetime.now(UTC),
        "unsubscribe": Unsubscribe.for_lead(
            TOKENS, lead_id, mailbox=DEALER, url_base="https://leads.example.fr/v1/unsubscribe"
        ),
        "auto_reply": True,
    }


def _first_answer(lead_id: str, to: str) -> EmailMessage:
    return as_email_message(render_email(**_arguments(lead_id, to)))


def _rendered(lead_id: str, to: str) -> OutgoingEmail:
    """The same message as wire bytes (what the qualify worker sends, through ``sendmail``)."""
    return render_email(**_arguments(lead_id, to))


async def test_sent_message_is_read_back_and_the_reply_joins_the_lead() -> None:
    sender = SmtpSender(require_smtp())
    lead_id = str(uuid.uuid4())
    message = _first_answer(lead_id, PROSPECT)
    message_id = str(message["Message-ID"])

    sent = await sender.send(message)
    assert sent.queue_id
    assert sent.message_id == message_id

    async with imap_mailbox(PROSPECT) as inbox:
        received = await inbox.wait_for("Message-ID", message_id)
    parsed = message_from_bytes(received.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "Votre demande : Citroën C3, réf. AD-1"
    assert TOKENS.lead_of_address(str(parsed["Reply-To"])) == lead_id
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = parsed.get_body(("plain",))
    assert plain is not None
    assert "Gaëlle vous rappelle à 17 h." in plain.get_content()

    # The prospect answers: to the Reply-To plus-address, quoting our Message-ID.
    reply = EmailMessage()
    reply["From"] = f"Hélène Gaël <{PROSPECT}>"
    reply["To"] = str(parsed["Reply-To"])
    reply["Subject"] = f"Re: {parsed['Subject']}"
    reply["In-Reply-To"] = message_id
    reply["References"] = message_id
    reply["Message-ID"] = f"<{uuid.uuid4().hex}@{PROSPECT.partition('@')[2]}>"
    reply.set_content("Oui, 17 h me convient. Hélène")
    await sender.send(reply)

    async with imap_mailbox(DEALER) as dealer_inbox:
        answer = await dealer_inbox.wait_for("Message-ID", str(reply["Message-ID"]))
    assert lead_of_message(answer, TOKENS) == lead_id


async def test_rendered_bytes_arrive_intact_through_postfix_and_dovecot() -> None:
    sender = SmtpSender(require_smtp())
    lead_id = str(uuid.uuid4())
    arguments = _arguments(lead_id, PROSPECT) | {
        "message_key": "k" * 64,  # a Message-ID of 120+ characters: one line, whole
        "subject": "Votre demande : Citroën C3, réf. AD-1 — réponse de Gaëlle, conseillère",
        "html": "<p>Bonjour <b>Hélène</b>, prix &lt; 10 000 €</p>",
        "in_reply_to": "<abc.def@mail.leboncoin.fr>",
        "references": ["<root@mail.leboncoin.fr>"],
    }
    message = render_email(**arguments)
    assert len(message.message_id) > 120

    sent = await sender.send(message)
    assert sent.queue_id
    assert sent.message_id == message.message_id

    async with imap_mailbox(PROSPECT) as inbox:
        await inbox.wait_for("Message-ID", message.message_id)
        # The delivered bytes themselves (re-flattening a parsed copy would refold them).
        [delivered] = await inbox.search(f'HEADER Message-ID "{message.message_id}"')
    assert f"\r\nMessage-ID: {message.message_id}\r\n".encode() in delivered.replace(
        b"\r\n", b"\n"
    ).replace(b"\n", b"\r\n")
    parsed = message_from_bytes(delivered, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == message.message_id
    assert parsed["Subject"] == arguments["subject"]
    [to] = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Hélène Gaël", PROSPECT)
    [from_] = parsed["From"].addresses
    assert (from_.display_name, from_.addr_spec) == ("Garage Dupont Automobiles", DEALER)
    assert TOKENS.lead_of_address(str(parsed["Reply-To"])) == lead_id
    assert parsed["In-Reply-To"] == "<abc.def@mail.leboncoin.fr>"
    assert parsed["References"] == "<root@mail.leboncoin.fr> <abc.def@mail.leboncoin.fr>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = arguments["unsubscribe"]
    assert isinstance(unsubscribe, Unsubscribe)
    assert " ".join(str(parsed["List-Unsubscribe"]).split()) == unsubscribe.header()
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().replace("\r\n", "\n") == arguments["text"]
    assert html.get_content().replace("\r\n", "\n") == arguments["html"] + "\n"


async def test_unknown_mailbox_bounces_with_a_dsn_naming_our_message_and_lead() -> None:
    sender = SmtpSender(require_smtp())
    lead_id = str(uuid.uuid4())
    message = _first_answer(lead_id, UNKNOWN)
    message_id = str(message["Message-ID"])
    # The envelope sender (Return-Path) is the lead's plus-address: the DSN comes back to it.
    await sender.send(message, envelope_from=TOKENS.reply_address(lead_id, mailbox=DEALER))

    async with imap_mailbox(DEALER) as inbox:
        # Postfix's bounce daemon writes the DSN in its own time: on a loaded machine, well
        # past the 15 s that a plain delivery needs.
        dsn = await inbox.wait_for_text(message_id.strip("<>"), within_s=60.0)
    bounce = parse_bounce(dsn)
    assert bounce is not None
    assert bounce.original_message_id == message_id
    assert bounce.hard
    [recipient] = bounce.recipients
    assert (recipient.recipient, recipient.action, recipient.status) == (UNKNOWN, "failed", "5.1.1")
    assert recipient.smtp_code == 550
    assert TOKENS.ref_of_message_id(message_id) is not None
    assert lead_of_message(dsn, TOKENS) == lead_id  # through the plus-address it was sent to


async def test_a_recipient_refused_at_rcpt_time_is_permanent() -> None:
    sender = SmtpSender(require_smtp())
    for message in (
        _first_answer(str(uuid.uuid4()), PROSPECT),
        _rendered(str(uuid.uuid4()), PROSPECT),
    ):
        with pytest.raises(PermanentSendError) as caught:
            await sender.send(message, recipients=["x@-bad-.test"])
        assert caught.value.code == 501
        assert str(caught.value) == "SMTP RCPT refused: 501 5.1.3"


async def test_before_data_runs_once_the_envelope_is_accepted_and_can_abort() -> None:
    sender = SmtpSender(require_smtp())
    calls: list[str] = []

    async def record() -> None:
        calls.append("before_data")

    message = _rendered(str(uuid.uuid4()), PROSPECT)
    sent = await sender.send(message, before_data=record)
    assert calls == ["before_data"]
    assert sent.queue_id
    assert sent.message_id == message.message_id

    class ClaimTaken(Exception):
        pass

    async def refuse() -> None:
        raise ClaimTaken()

    aborted = _rendered(str(uuid.uuid4()), PROSPECT)
    with pytest.raises(ClaimTaken):  # unchanged: the caller's own exception
        await sender.send(aborted, before_data=refuse)
    # A recipient refused at RCPT never reaches the hook.
    with pytest.raises(PermanentSendError):
        await sender.send(aborted, recipients=["x@-bad-.test"], before_data=refuse)
    async with imap_mailbox(PROSPECT) as inbox:
        await inbox.wait_for("Message-ID", message.message_id)
        await asyncio.sleep(1.0)
        assert await inbox.search(f'HEADER Message-ID "{aborted.message_id}"') == []


async def test_the_ehlo_name_is_looked_up_once_per_sender(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiosmtplib resolves the client's name in a thread on every connection unless told it: the
    sender looks it up once and every message's EHLO uses it."""
    lookups: list[str] = []
    real_getfqdn = socket.getfqdn

    def counting_getfqdn(name: str = "") -> str:
        lookups.append(name)
        return real_getfqdn(name)

    monkeypatch.setattr(socket, "getfqdn", counting_getfqdn)
    sender = SmtpSender(require_smtp())
    for _ in range(3):
        sent = await sender.send(_first_answer(str(uuid.uuid4()), PROSPECT))
        assert sent.queue_id
    assert len(lookups) == 1


async def test_the_benchmarks_prospect_domain_is_dropped_without_a_bounce() -> None:
    """scripts/smtp.sh discards mail to the bench's prospects (benchmarks/pipeline/flow.py): no
    DSN comes back, where a message to any other outside domain is bounced."""
    from benchmarks.pipeline.flow import PROSPECT_MAIL_DOMAIN

    sender = SmtpSender(require_smtp())
    envelope_from = TOKENS.reply_address(str(uuid.uuid4()), mailbox=DEALER)
    dropped = _first_answer(str(uuid.uuid4()), f"camille.1@{PROSPECT_MAIL_DOMAIN}")
    bounced = _first_answer(str(uuid.uuid4()), "camille.1@elsewhere.example.fr")
    await sender.send(dropped, envelope_from=envelope_from)
    await sender.send(bounced, envelope_from=envelope_from)

    async with imap_mailbox(DEALER) as inbox:
        # The second message's DSN arrives: by then the first one's would have too.
        await inbox.wait_for_text(str(bounced["Message-ID"]).strip("<>"), within_s=60.0)
        assert await inbox.search(f'TEXT "{str(dropped["Message-ID"]).strip("<>")}"') == []
