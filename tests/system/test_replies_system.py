"""The prospect's answers come back to the lead, on the embedded default (SQLite + embedded bus,
as ``make run``) with the real mail servers and the local OVH API: qualify's first answer goes
out through Postfix, the prospect's reply comes back to the dealer's mailbox and ingest's IMAP
poller makes it part of the lead's conversation in qualify (never a new lead, once even when
delivered twice); a STOP by SMS blocks qualify's SMS and reaches crm; Postfix's bounce of an
e-mail to an unknown mailbox marks the message bounced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import email_validator
import pytest
from sqlalchemy import func, select

from ingest.models import InboundMessage, Lead, OutboundSms
from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.smtp_sender import SmtpSender
from tests.support.fake_ovh import FakeOvh, serve_fake_ovh
from tests.support.harness import System, eventually, run_system, settings_for
from tests.support.mail import (
    DEALER,
    PROSPECT,
    UNKNOWN,
    DealerFolder,
    dealer_folder,
    imap_mailbox,
    require_smtp,
)

pytestmark = [pytest.mark.smtp, pytest.mark.imap]

TOKENS = LeadTokens("dev-only-lead-token-key")  # ingest's and qualify's default
PHONE = "+33612345678"


@dataclass
class Running:
    system: System
    folder: DealerFolder
    ovh: FakeOvh

    async def conversation(self, lead_id: str) -> dict[str, Any]:
        answer = await self.system.qualify.get(f"/v1/leads/{lead_id}/conversation")
        if answer.status_code == 404:  # not queued in qualify yet
            return {"items": [], "unread_replies": 0}
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def ingest_count(self, model: Any) -> int:
        runtime = self.system.services["ingest"].app.state.runtime
        async with runtime.session_factory() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def new_lead(self, email: str, phone: str | None = None) -> str:
        contact = {
            "full_name": "Hélène Gaël",
            "email": email,
            **({"phone": phone} if phone else {}),
        }
        answer = await self.system.ingest.post(
            "/v1/leads",
            json={"source": "leboncoin", "source_ref": f"lbc-{uuid.uuid4()}", "contact": contact},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])


@pytest.fixture
async def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    smtp = require_smtp()
    # The test mail domain is a special-use one (``.test``): let ingest accept it as a lead's
    # address, with email-validator's own switch for tests.
    monkeypatch.setattr(email_validator, "TEST_ENVIRONMENT", True)
    bus = tmp_path / "bus.db"

    def common(name: str) -> dict[str, Any]:
        return {
            "database_url": f"sqlite+aiosqlite:///{tmp_path / name}.db",
            "bus": "embedded",
            "embedded_bus_path": bus,
        }

    async with serve_fake_ovh() as ovh, dealer_folder() as folder:
        sms = ovh.settings().model_dump()
        settings = {
            "ingest": settings_for(
                "ingest",
                **common("ingest"),
                **folder.settings(),
                **sms,
                sms_inbound_poll_interval_s=0.2,
            ),
            "qualify": settings_for(
                "qualify",
                **common("qualify"),
                **sms,
                smtp_host=smtp.smtp_host,
                smtp_port=smtp.smtp_port,
                smtp_tls="none",
                message_from_address=DEALER,
                message_reply_mailbox=DEALER,
                message_poll_interval_s=0.5,
            ),
            "crm": settings_for("crm", **common("crm")),
        }
        async with run_system(settings) as system:
            yield Running(system, folder, ovh)


def _reply(received: Any, text: str) -> EmailMessage:
    def unfolded(name: str) -> str:
        return " ".join(str(received[name]).split())

    reply = EmailMessage(policy=SMTP.clone(max_line_length=998))
    reply["From"] = f"Hélène Gaël <{PROSPECT}>"
    reply["To"] = unfolded("Reply-To")
    reply["Subject"] = f"Re: {unfolded('Subject')}"
    reply["Message-ID"] = f"<{uuid.uuid4().hex}@vo-leads.test>"
    reply["In-Reply-To"] = unfolded("Message-ID")
    reply["References"] = unfolded("Message-ID")
    reply.set_content(f"{text}\n\nLe mar. 1 déc. 2026 à 10:00, <{DEALER}> a écrit :\n> Bonjour\n")
    return reply


async def test_a_reply_by_email_joins_the_conversation_once_and_is_no_lead(
    running: Running,
) -> None:
    lead_id = await running.new_lead(PROSPECT)
    token = TOKENS.token(lead_id)
    async with imap_mailbox(PROSPECT) as prospect:
        first_answer = await prospect.wait_for("Reply-To", token, within_s=30)

    reply = _reply(first_answer, "Oui, rappelez-moi après 18 h.")
    await SmtpSender(require_smtp()).send(reply)
    async with imap_mailbox(DEALER) as dealer:
        await dealer.wait_for("Message-ID", str(reply["Message-ID"]))
    raw = await running.folder.take(f'HEADER Message-ID "{reply["Message-ID"]}"')

    async def replied() -> list[dict[str, Any]]:
        items = (await running.conversation(lead_id))["items"]
        return [item for item in items if item["direction"] == "in"]

    [answer] = await eventually(replied)
    sent = [
        item
        for item in (await running.conversation(lead_id))["items"]
        if item["direction"] == "out"
    ]
    [email_out] = [item for item in sent if item["channel"] == "email"]
    assert answer["text"] == "Oui, rappelez-moi après 18 h."
    assert answer["in_reply_to"] == email_out["id"]
    assert (await running.conversation(lead_id))["unread_replies"] == 1
    assert await running.ingest_count(Lead) == 1
    assert (await running.system.ingest.get("/v1/quarantine")).json()["items"] == []

    # The same message delivered again: read, recognised, moved; the conversation is unchanged.
    await running.folder.append(raw)

    async def both_processed() -> bool:
        return await running.folder.count(running.folder.processed) == 2

    await eventually(both_processed)
    await asyncio.sleep(1.0)  # what would have been published has had time to arrive
    assert len(await replied()) == 1
    assert await running.ingest_count(InboundMessage) == 1
    assert await running.ingest_count(Lead) == 1


async def test_a_stop_by_sms_blocks_qualify_sms(running: Running) -> None:
    lead_id = await running.new_lead(PROSPECT, phone="06 12 34 56 78")
    await eventually(lambda: _sms_sent(running))  # qualify's first answer by SMS
    await eventually(lambda: running.ingest_count(OutboundSms))  # ingest read message-sent
    running.ovh.receive(PHONE, "STOP")

    async def stopped() -> list[dict[str, Any]]:
        items = (await running.conversation(lead_id))["items"]
        return [item for item in items if item["direction"] == "in" and item["stop_request"]]

    [stop] = await eventually(stopped)
    assert (stop["channel"], stop["sender"]) == ("sms", PHONE)
    # ingest acknowledges the SMS at the provider (deletes it there) only after committing it:
    # its event may reach qualify before that call.
    await eventually(lambda: _acknowledged(running))
    qualify = running.system.qualify
    assert (await qualify.post(f"/v1/leads/{lead_id}/claim")).status_code == 200
    refused = await qualify.post(
        f"/v1/leads/{lead_id}/messages", json={"channel": "sms", "text": "Bonjour"}
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["reason"] == "opted_out"


async def _sms_sent(running: Running) -> bool:
    return bool(running.ovh.jobs)


async def _acknowledged(running: Running) -> bool:
    """Whether no incoming SMS waits at the provider any more (ingest deleted what it took in)."""
    return running.ovh.incoming == {}


async def test_a_bounce_from_postfix_marks_the_message_bounced(running: Running) -> None:
    lead_id = await running.new_lead(UNKNOWN)

    async def email_out() -> dict[str, Any] | None:
        items = (await running.conversation(lead_id))["items"]
        return next((i for i in items if i["direction"] == "out" and i["status"] == "sent"), None)

    sent = await eventually(email_out)
    async with imap_mailbox(DEALER) as dealer:
        # Postfix's bounce daemon writes the DSN in its own time: slow on a loaded machine.
        await dealer.wait_for_text(TOKENS.token(lead_id), within_s=60)
    await running.folder.take(f'TEXT "{TOKENS.token(lead_id)}"')

    async def bounced() -> bool:
        items = (await running.conversation(lead_id))["items"]
        return any(i["id"] == sent["id"] and i["status"] == "bounced" for i in items)

    await eventually(bounced)
    assert await running.ingest_count(Lead) == 1
