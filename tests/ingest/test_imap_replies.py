"""Replies and bounces over the real mail servers: our e-mail goes through Postfix
(scripts/smtp.sh) to the prospect's Dovecot mailbox, the prospect's reply and Postfix's own
DSN come back to the dealer's mailbox, and the IMAP poller reads them: each joins the lead's
conversation once, none becomes a lead."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import email_validator
import pytest
from sqlalchemy import func, select

from ingest.imap.poller import ImapPoller
from ingest.models import Lead, infra
from shared.clock import utcnow
from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.smtp_sender import SmtpSender
from tests.ingest.conftest import IngestFactory
from tests.support.harness import RunningService
from tests.support.mail import (
    DEALER,
    PROSPECT,
    UNKNOWN,
    DealerFolder,
    dealer_answer,
    dealer_folder,
    imap_mailbox,
    require_smtp,
)

pytestmark = [pytest.mark.smtp, pytest.mark.imap]

TOKENS = LeadTokens("dev-only-lead-token-key")
WIRE = SMTP.clone(max_line_length=998)


@pytest.fixture
def test_mail_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept the test servers' special-use domain (``vo-leads.test``) as a lead's address, as
    email-validator's own switch for tests does; production refuses it."""
    monkeypatch.setattr(email_validator, "TEST_ENVIRONMENT", True)


@pytest.fixture
async def folder(test_mail_domain: None) -> AsyncIterator[DealerFolder]:
    require_smtp()
    async with dealer_folder() as created:
        yield created


def first_answer(lead_id: str, message_key: str, to: str) -> EmailMessage:
    return dealer_answer(TOKENS, lead_id, message_key, to=to, date=utcnow())


def unfolded(value: object) -> str:
    return " ".join(str(value).split())


async def poll(service: RunningService) -> None:
    poller = ImapPoller(service.app.state.runtime)
    try:
        await poller.step()
    finally:
        await poller.close()


async def published(service: RunningService, event_type: str) -> list[dict[str, Any]]:
    table = infra.outbox_event
    async with service.app.state.runtime.session_factory() as session:
        values = await session.scalars(
            select(table.c.value).where(table.c.event_type == event_type).order_by(table.c.id)
        )
        return [json.loads(value) for value in values]


async def leads(service: RunningService) -> int:
    async with service.app.state.runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Lead)) or 0)


async def test_a_reply_through_postfix_read_by_the_poller_joins_the_lead(
    ingest_service: IngestFactory, folder: DealerFolder
) -> None:
    smtp = SmtpSender(require_smtp())
    async with ingest_service(**folder.settings()) as service:
        answer = await service.client.post(
            "/v1/leads",
            json={
                "source": "leboncoin",
                "source_ref": f"lbc-{uuid.uuid4()}",
                "contact": {"full_name": "Hélène Gaël", "email": PROSPECT},
            },
        )
        lead_id = answer.json()["id"]
        message_key = str(uuid.uuid4())
        ours = first_answer(lead_id, message_key, PROSPECT)
        await smtp.send(ours, envelope_from=TOKENS.reply_address(lead_id, mailbox=DEALER))
        async with imap_mailbox(PROSPECT) as prospect:
            received = await prospect.wait_for("Message-ID", str(ours["Message-ID"]))

        reply = EmailMessage(policy=WIRE)
        reply["From"] = f"Hélène Gaël <{PROSPECT}>"
        reply["To"] = unfolded(received["Reply-To"])
        reply["Subject"] = "Re: Votre demande : Citroën C3"
        reply["Message-ID"] = f"<{uuid.uuid4().hex}@vo-leads.test>"
        reply["In-Reply-To"] = unfolded(received["Message-ID"])
        reply["References"] = unfolded(received["Message-ID"])
        reply.set_content(
            "Oui, rappelez-moi après 18 h.\n\nLe mar. 1 déc. 2026 à 10:00, Garage Dupont "
            f"<{DEALER}> a écrit :\n> Bonjour Hélène,\n"
        )
        await smtp.send(reply)
        async with imap_mailbox(DEALER) as dealer:
            await dealer.wait_for("Message-ID", str(reply["Message-ID"]))
        delivered = await folder.take(f'HEADER Message-ID "{reply["Message-ID"]}"')

        await poll(service)
        [event] = await published(service, "lead.message-received.v1")
        assert event["lead_id"] == lead_id
        assert event["in_reply_to"] == message_key
        assert event["text"] == "Oui, rappelez-moi après 18 h."
        assert event["sender"] == PROSPECT
        assert await leads(service) == 1
        assert (await service.client.get("/v1/quarantine")).json()["items"] == []
        assert await folder.count(folder.name) == 0

        # Delivered again (a second copy in the folder): read, recognised, moved; nothing new.
        await folder.append(delivered)
        await poll(service)
        assert await folder.count(folder.name) == 0
        assert await folder.count(folder.processed) == 2
        assert len(await published(service, "lead.message-received.v1")) == 1
        assert await leads(service) == 1


async def test_a_postfix_bounce_read_by_the_poller_is_recorded(
    ingest_service: IngestFactory, folder: DealerFolder
) -> None:
    smtp = SmtpSender(require_smtp())
    async with ingest_service(**folder.settings()) as service:
        answer = await service.client.post(
            "/v1/leads",
            json={
                "source": "api",
                "source_ref": f"r-{uuid.uuid4()}",
                "contact": {"email": UNKNOWN},
            },
        )
        lead_id = answer.json()["id"]
        message_key = str(uuid.uuid4())
        ours = first_answer(lead_id, message_key, UNKNOWN)
        await smtp.send(ours, envelope_from=TOKENS.reply_address(lead_id, mailbox=DEALER))
        token = str(ours["Message-ID"]).strip("<>")
        async with imap_mailbox(DEALER) as dealer:
            await dealer.wait_for_text(token)
        await folder.take(f'TEXT "{token}"')

        await poll(service)
        [event] = await published(service, "lead.message-bounced.v1")
        assert (event["lead_id"], event["message_id"]) == (lead_id, message_key)
        assert (event["bounce"], event["status"], event["smtp_code"]) == ("hard", "5.1.1", 550)
        assert await published(service, "lead.message-received.v1") == []
        assert await leads(service) == 1
        assert (await service.client.get("/v1/ignored")).json()["items"] == []
