"""Replies and bounces through ``POST /v1/sources/email``: they join the lead's conversation
(``lead.message-received.v1``, ``lead.message-bounced.v1``), never a new lead nor a quarantine
entry; a redelivery publishes nothing; the raw bytes are kept with the lead's id, so erasure
and retention reach them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from sqlalchemy import func, select

from ingest.models import InboundMessage, Lead, RawInput, infra, metadata
from ingest.raw_inputs.retention import purge_raw_inputs
from ingest.worker import LEAD_KEYS
from shared.events.privacy import ErasureRequestedV1
from shared.messaging.lead_tokens import LeadTokens
from shared.privacy import lead_scoped_eraser
from tests.ingest.conftest import IngestFactory
from tests.support.clock import TUESDAY_11H, Clock
from tests.support.harness import RunningService
from tests.support.infra import create_database, drop_database
from tests.support.mail import dealer_answer

EMAIL = {"Content-Type": "message/rfc822"}
TOKENS = LeadTokens("dev-only-lead-token-key")  # the default of ingest and qualify
DEALER = "concession@vo-leads.test"
PROSPECT = "helene.gael@exemple.fr"
WIRE = SMTP.clone(max_line_length=998)  # as mail clients write headers: no encoded words


async def new_lead(service: RunningService) -> str:
    answer = await service.client.post(
        "/v1/leads",
        json={
            "source": "leboncoin",
            "source_ref": f"lbc-{uuid.uuid4()}",
            "contact": {"full_name": "Hélène Gaël", "email": PROSPECT, "phone": "0612345678"},
            "vehicle": {"ad_ref": "AD-1"},
        },
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def our_message(lead_id: str, message_key: str, *, to: str = PROSPECT) -> EmailMessage:
    return dealer_answer(
        TOKENS,
        lead_id,
        message_key,
        to=to,
        date=TUESDAY_11H,
        dealer=DEALER,
        subject="Votre demande : annonce AD-1",
    )


def reply_to(
    ours: EmailMessage, text: str, *, subject: str | None = None, message_id: str | None = None
) -> bytes:
    reply = EmailMessage(policy=WIRE)
    reply["From"] = f"Hélène Gaël <{PROSPECT}>"
    reply["To"] = str(ours["Reply-To"])
    reply["Subject"] = subject or f"Re: {ours['Subject']}"
    reply["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@exemple.fr>"
    reply["In-Reply-To"] = str(ours["Message-ID"])
    reply["References"] = str(ours["Message-ID"])
    reply.set_content(text)
    return reply.as_bytes()


def postfix_dsn(ours: EmailMessage, *, status: str = "5.1.1") -> bytes:
    """What Postfix sends back to the VERP Return-Path for an unknown mailbox (RFC 3464)."""
    returned = "".join(f"{name}: {value}\r\n" for name, value in ours.items())
    return (
        "From: MAILER-DAEMON@vo-leads.test (Mail Delivery System)\r\n"
        f"To: {ours['Reply-To']}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@vo-leads.test>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host vo-leads.test.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; vo-leads.test\r\n\r\n"
        f"Final-Recipient: rfc822; {ours['To']}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} User unknown\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{returned}--b--\r\n"
    ).encode()


async def events(service: RunningService, event_type: str) -> list[dict[str, Any]]:
    table = infra.outbox_event
    async with service.app.state.runtime.session_factory() as session:
        values = await session.scalars(
            select(table.c.value).where(table.c.event_type == event_type).order_by(table.c.id)
        )
        return [json.loads(value) for value in values]


async def count(service: RunningService, model: Any) -> int:
    async with service.app.state.runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def post(service: RunningService, raw: bytes) -> dict[str, Any]:
    answer = await service.client.post("/v1/sources/email", content=raw, headers=EMAIL)
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_reply_joins_the_lead_once_and_never_becomes_a_lead(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        lead_id = await new_lead(service)
        ours = our_message(lead_id, "msg-1")
        raw = reply_to(
            ours,
            "Oui, rappelez-moi à 18 h.\n\nLe mar. 24 nov. 2026 à 11:00, Garage Dupont "
            f"<{DEALER}> a écrit :\n> Bonjour Hélène,\n> Nous vous rappelons avant 17 h.\n",
        )
        answer = await post(service, raw)
        assert answer["status"] == "reply"
        assert answer["lead_id"] == lead_id
        assert answer["leads"] == []
        assert answer["quarantine_ids"] == []

        [event] = await events(service, "lead.message-received.v1")
        assert event["lead_id"] == lead_id
        assert event["message_id"] == answer["id"]
        assert event["channel"] == "email"
        assert event["sender"] == PROSPECT
        assert event["text"] == "Oui, rappelez-moi à 18 h."
        assert event["subject"] == "Re: Votre demande : annonce AD-1"
        assert event["in_reply_to"] == "msg-1"
        assert event["stop_request"] is False
        assert event["email_message_id"].endswith("@exemple.fr>")

        # The same bytes again, then with a relay's extra header: the same answer, nothing new.
        assert await post(service, raw) == answer
        redelivered = await post(service, b"X-Relayed: yes\r\n" + raw)
        assert (redelivered["status"], redelivered["id"]) == ("reply", answer["id"])
        assert len(await events(service, "lead.message-received.v1")) == 1
        assert await count(service, Lead) == 1  # the lead itself; the reply is none
        assert (await service.client.get("/v1/quarantine")).json()["items"] == []
        assert (await service.client.get("/v1/ignored")).json()["items"] == []
        async with service.app.state.runtime.session_factory() as session:
            raw_input = await session.get(RawInput, answer["raw_input_id"])
            assert raw_input is not None
            assert (raw_input.outcome, raw_input.lead_id) == ("reply", lead_id)


async def test_stop_and_unsubscribe_replies_ask_to_stop(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        lead_id = await new_lead(service)
        ours = our_message(lead_id, "msg-1")
        await post(service, reply_to(ours, "STOP\n\nEnvoyé de mon iPhone"))
        # The List-Unsubscribe mailto: the lead's plus-address, subject "unsubscribe".
        mailto = EmailMessage(policy=WIRE)
        mailto["From"] = PROSPECT
        mailto["To"] = TOKENS.reply_address(lead_id, mailbox=DEALER)
        mailto["Subject"] = "unsubscribe"
        mailto["Message-ID"] = "<unsub-1@exemple.fr>"
        mailto.set_content("")
        await post(service, mailto.as_bytes())
        await post(service, reply_to(ours, "Pouvez-vous arrêter de m'appeler le midi ?"))
        stops = [e["stop_request"] for e in await events(service, "lead.message-received.v1")]
        assert stops == [True, True, False]


async def test_an_auto_reply_is_recorded_as_ignored_with_its_lead(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        lead_id = await new_lead(service)
        ours = our_message(lead_id, "msg-1")
        raw = reply_to(ours, "Je suis absente jusqu'au 5 décembre.")
        raw = b"Auto-Submitted: auto-replied\r\n" + raw
        answer = await post(service, raw)
        assert (answer["status"], answer["reason"], answer["lead_id"]) == (
            "ignored", "auto_reply", lead_id,
        )  # fmt: skip
        assert await post(service, raw) == answer
        assert await events(service, "lead.message-received.v1") == []
        assert await count(service, Lead) == 1


async def test_a_bounce_of_our_message_is_published_never_a_lead(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        lead_id = await new_lead(service)
        ours = our_message(lead_id, "msg-7", to="nobody-here@vo-leads.test")
        raw = postfix_dsn(ours)
        answer = await post(service, raw)
        assert (answer["status"], answer["lead_id"]) == ("bounce", lead_id)
        [event] = await events(service, "lead.message-bounced.v1")
        assert event == {
            "lead_id": lead_id,
            "message_id": "msg-7",
            "bounce": "hard",
            "status": "5.1.1",
            "smtp_code": 550,
            "bounced_at": event["bounced_at"],
        }
        assert await post(service, raw) == answer
        assert len(await events(service, "lead.message-bounced.v1")) == 1
        soft = await post(service, postfix_dsn(ours, status="4.2.2"))
        assert soft["status"] == "bounce"
        assert soft["id"] != answer["id"]
        bounces = [e["bounce"] for e in await events(service, "lead.message-bounced.v1")]
        assert bounces == ["hard", "soft"]
        assert await count(service, Lead) == 1


async def test_unknown_bounces_are_listed_as_ignored_with_a_reason(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as service:
        foreign = EmailMessage()
        foreign["From"] = DEALER
        foreign["To"] = "someone@example.com"
        foreign["Message-ID"] = "<not-ours@example.com>"
        foreign["Reply-To"] = "someone-else@example.com"
        answer = await post(service, postfix_dsn(foreign))
        assert (answer["status"], answer["reason"]) == ("ignored", "bounce_not_ours")
        listed = (await service.client.get("/v1/ignored")).json()["items"]
        assert [(item["id"], item["reason"]) for item in listed] == [
            (answer["id"], "bounce_not_ours")
        ]
        assert await events(service, "lead.message-bounced.v1") == []
        assert await count(service, Lead) == 0


async def test_a_reply_to_a_lead_unknown_here_is_a_new_input(ingest_service: IngestFactory) -> None:
    """Its lead was erased (or never came through ingest): the person writing again is a lead."""
    async with ingest_service() as service:
        ours = our_message(str(uuid.uuid4()), "msg-1")
        answer = await post(service, reply_to(ours, "Toujours disponible ?"))
        assert answer["status"] == "accepted"
        assert await events(service, "lead.message-received.v1") == []


async def test_erasure_and_retention_reach_the_replies(ingest_service: IngestFactory) -> None:
    clock = Clock()
    async with ingest_service(clock=clock) as service:
        lead_id = await new_lead(service)
        ours = our_message(lead_id, "msg-1")
        await post(service, reply_to(ours, "Oui"))
        await post(service, postfix_dsn(ours))
        sessions = service.app.state.runtime.session_factory
        assert await count(service, InboundMessage) == 2

        erase = lead_scoped_eraser(metadata, key_columns=LEAD_KEYS)
        request = ErasureRequestedV1(
            request_id=str(uuid.uuid4()),
            client_id=str(uuid.uuid4()),
            lead_ids=[lead_id],
            contact_hashes=[],
            requested_at=TUESDAY_11H,
        )
        async with sessions() as session, session.begin():
            erased = await erase(session, request)
        assert erased["inbound_message"] == 2
        assert erased["raw_input"] == 2  # the reply and the bounce (the lead came as JSON)
        assert await count(service, InboundMessage) == 0

        other = await new_lead(service)
        await post(service, reply_to(our_message(other, "msg-2"), "Oui"))
        await purge_raw_inputs(sessions, retention=timedelta(days=30), now=clock.advance(days=31))
        assert await count(service, RawInput) == 0


@pytest.mark.postgres
async def test_concurrent_redeliveries_publish_once_on_postgres(
    ingest_service: IngestFactory,
) -> None:
    url = await create_database()
    try:
        async with ingest_service(database_url=url) as service:
            lead_id = await new_lead(service)
            raw = reply_to(our_message(lead_id, "msg-1"), "Oui", message_id="<r-1@exemple.fr>")
            copies = [raw] + [f"X-Copy: {n}\r\n".encode() + raw for n in range(5)]
            answers = await asyncio.gather(*(post(service, copy) for copy in copies))
            assert {(a["status"], a["id"]) for a in answers} == {("reply", answers[0]["id"])}
            assert len(await events(service, "lead.message-received.v1")) == 1
            assert await count(service, InboundMessage) == 1
    finally:
        await drop_database(url)
