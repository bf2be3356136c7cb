"""Qualify's worker and API on PostgreSQL and Kafka with Postfix, Dovecot and the local OVH API:
a new lead's first answer reaches the prospect's mailbox and phone, its replay sends nothing;
the worker's own consumer wakes the sender (the poll is set to 30 s here); the prospect's reply,
STOP and a bounce, published as ingest will publish them, reach the conversation; and the first
answers of a burst of leads (20 leads/s) are handed over within the minute."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from qualify.models import OutgoingMessage, infra
from shared.clock import utcnow
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import (
    LeadMessageBouncedV1,
    LeadMessageReceivedV1,
    LeadReceivedV1,
)
from shared.messaging.lead_tokens import LeadTokens
from shared.settings import ServiceSettings
from tests.support.fake_ovh import FakeOvh, serve_fake_ovh
from tests.support.harness import System, eventually, publish_events, run_system, settings_for
from tests.support.mail import DEALER, PROSPECT, imap_mailbox, require_smtp

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.smtp, pytest.mark.imap]

TOKENS = LeadTokens("dev-only-lead-token-key")


@dataclass
class Running:
    system: System
    settings: ServiceSettings
    ovh: FakeOvh

    async def publish(self, event_type: str, payload: Any, *, event_id: str | None = None) -> str:
        envelope = Envelope(
            id=event_id or str(uuid.uuid4()),
            source="/vo-leads/ingest",
            type=event_type,
            subject=payload.lead_id,
            data=payload.model_dump(mode="json"),
        )
        await publish_events(self.settings, [envelope])
        return envelope.id

    async def messages(self, lead_id: str) -> dict[str, OutgoingMessage]:
        runtime = self.system.services["qualify"].app.state.runtime
        async with session_scope(runtime.session_factory) as session:
            rows = (
                await session.scalars(
                    select(OutgoingMessage).where(OutgoingMessage.lead_id == lead_id)
                )
            ).all()
        return {row.channel: row for row in rows}

    async def processed(self, event_id: str) -> bool:
        runtime = self.system.services["qualify"].app.state.runtime
        table = infra.processed_event
        async with session_scope(runtime.session_factory) as session:
            count = await session.scalar(
                select(func.count()).select_from(table).where(table.c.event_id == event_id)
            )
        return bool(count)


@pytest.fixture
async def running(postgres_url: str, kafka_bootstrap: str) -> AsyncIterator[Running]:
    smtp = require_smtp()
    async with serve_fake_ovh() as ovh:
        settings = settings_for(
            "qualify",
            database_url=postgres_url,
            bus="kafka",
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
            topic_partitions=2,
            smtp_host=smtp.smtp_host,
            smtp_port=smtp.smtp_port,
            smtp_tls="none",
            message_dealer_name="Garage Dupont",
            message_from_address=DEALER,
            message_reply_mailbox=DEALER,
            message_poll_interval_s=30.0,  # only the consumer's wake-up can make it fast
            **ovh.settings().model_dump(),
        )
        async with run_system({"qualify": settings}) as system:
            yield Running(system, settings, ovh)


def new_lead(*, phone: str = "+33612345678", received_at: datetime | None = None) -> LeadReceivedV1:
    lead_id = str(uuid.uuid4())
    return LeadReceivedV1.model_validate(
        {
            "lead_id": lead_id,
            "kind": "enquiry",
            "source": "leboncoin",
            "source_ref": f"lbc-{lead_id}",
            "received_at": received_at or utcnow(),
            "contact": {
                "first_name": "Hélène",
                "full_name": "Hélène Gaël",
                "email": PROSPECT,
                "phone": phone,
            },
            "vehicle": {"ad_ref": "AD-9", "make": "Citroën", "model": "C3", "year": 2021},
        }
    )


async def test_first_answer_reaches_the_mailbox_once_and_not_for_a_replay(
    running: Running,
) -> None:
    lead = new_lead()
    published = time.monotonic()
    await running.publish("lead.received.v1", lead)
    token = TOKENS.token(lead.lead_id)
    async with imap_mailbox(PROSPECT) as box:
        received = await box.wait_for("Reply-To", token, within_s=30)
    elapsed = time.monotonic() - published
    assert elapsed < 15, f"the first answer took {elapsed:.1f} s (the poll is 30 s)"
    assert received["Subject"] is not None
    rows = await eventually(lambda: _both_sent(running, lead.lead_id))
    assert str(received["Message-ID"]) == rows["email"].message_id_header
    assert [job["tag"] for job in running.ovh.jobs] == [rows["sms"].id]

    replay = await running.publish("lead.received.v1", lead)  # same lead, new event id
    await eventually(lambda: running.processed(replay))
    await asyncio.sleep(2)
    async with imap_mailbox(PROSPECT) as box:
        assert len(await box.search(f'HEADER Reply-To "{token}"')) == 1
    assert set(await running.messages(lead.lead_id)) == {"email", "sms"}
    assert len(running.ovh.jobs) == 1


async def _both_sent(running: Running, lead_id: str) -> dict[str, OutgoingMessage] | None:
    rows = await running.messages(lead_id)
    if {row.status for row in rows.values()} == {"sent"} and len(rows) == 2:
        return rows
    return None


async def test_replies_stop_and_bounces_published_by_ingest_reach_the_conversation(
    running: Running,
) -> None:
    lead = new_lead(phone="+33612340000")
    await running.publish("lead.received.v1", lead)
    rows = await eventually(lambda: _both_sent(running, lead.lead_id))
    qualify = running.system.qualify

    await running.publish(
        "lead.message-received.v1",
        LeadMessageReceivedV1(
            lead_id=lead.lead_id,
            message_id="imap-uid-1",
            channel="email",
            received_at=utcnow(),
            sender=PROSPECT,
            subject="Re: Votre demande",
            text="Rappelez-moi à 18 h.",
            in_reply_to=rows["email"].id,
        ),
    )
    await running.publish(
        "lead.message-received.v1",
        LeadMessageReceivedV1(
            lead_id=lead.lead_id,
            message_id="ovh-incoming-7",
            channel="sms",
            received_at=utcnow(),
            sender="+33612340000",
            text="Stop",
            stop_request=True,
        ),
    )
    await running.publish(
        "lead.message-bounced.v1",
        LeadMessageBouncedV1(
            lead_id=lead.lead_id,
            message_id=rows["email"].id,
            bounce="hard",
            status="5.1.1",
            bounced_at=utcnow(),
        ),
    )

    async def settled() -> dict[str, Any] | None:
        conversation = (await qualify.get(f"/v1/leads/{lead.lead_id}/conversation")).json()
        statuses = {
            item["channel"]: item.get("status")
            for item in conversation["items"]
            if item["direction"] == "out"
        }
        replies = [item for item in conversation["items"] if item["direction"] == "in"]
        return conversation if len(replies) == 2 and statuses["email"] == "bounced" else None

    conversation = await eventually(settled)
    assert conversation["unread_replies"] == 2
    replies = [item for item in conversation["items"] if item["direction"] == "in"]
    assert replies[0]["in_reply_to"] == rows["email"].id
    assert replies[1]["stop_request"] is True
    queue = (await qualify.get("/v1/queue")).json()["items"]
    assert {item["lead_id"]: item["unread_replies"] for item in queue}[lead.lead_id] == 2

    # STOP: no SMS to that number any more; the bounce: no e-mail to that address.
    again = new_lead(phone="+33612340000")
    await running.publish("lead.received.v1", again)

    async def queued() -> bool:
        items = (await qualify.get("/v1/queue")).json()["items"]
        return again.lead_id in {item["lead_id"] for item in items}

    await eventually(queued)  # decided in the same transaction as the queueing
    assert await running.messages(again.lead_id) == {}  # e-mail bounced, SMS stopped


async def test_a_burst_at_20_leads_per_second_is_answered_within_the_minute(
    running: Running, record_property: Callable[[str, object], None]
) -> None:
    leads = [new_lead(phone=f"+336123{index:05d}") for index in range(40)]
    published: dict[str, float] = {}
    start = time.monotonic()
    for index, lead in enumerate(leads):
        await asyncio.sleep(max(0.0, start + index / 20 - time.monotonic()))
        published[lead.lead_id] = time.time()
        await running.publish("lead.received.v1", lead)

    async def all_sent() -> list[tuple[str, datetime, datetime]] | None:
        runtime = running.system.services["qualify"].app.state.runtime
        async with session_scope(runtime.session_factory) as session:
            rows = (
                await session.scalars(
                    select(OutgoingMessage).where(
                        OutgoingMessage.lead_id.in_(list(published)),
                        OutgoingMessage.channel == "email",
                    )
                )
            ).all()
        sent = [
            (row.lead_id, row.created_at, row.sent_at)
            for row in rows
            if row.status == "sent" and row.sent_at is not None
        ]
        return sent if len(sent) == len(leads) else None

    sent = await eventually(all_sent, timeout_s=90)
    # Publish (ingest's commit) → handed to Postfix; and decision → hand-over.
    end_to_end = sorted(at.timestamp() - published[lead_id] for lead_id, _, at in sent)
    handover = sorted((at - created).total_seconds() for _, created, at in sent)
    p99_index = max(0, int(len(end_to_end) * 0.99) - 1)
    record_property("published_to_smtp_p50_s", round(statistics.median(end_to_end), 3))
    record_property("published_to_smtp_p99_s", round(end_to_end[p99_index], 3))
    record_property("decided_to_smtp_p50_s", round(statistics.median(handover), 3))
    record_property("decided_to_smtp_max_s", round(handover[-1], 3))
    assert end_to_end[-1] < 60
