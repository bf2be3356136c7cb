"""Inbound SMS against the local OVH API (``tests/support/fake_ovh.py``, real HTTP): a reply joins
the lead that was last sent an SMS at that number, STOP asks to stop, the provider forgets a
message only once it is recorded, and a crash in between publishes nothing twice."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from ingest.conversations.handlers import sms_sent_handler
from ingest.conversations.sms import SmsInbox
from ingest.models import InboundMessage, OutboundSms, RawInput, infra
from shared.clock import utcnow
from shared.consumer import Selective
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import LeadMessageSentV1
from shared.messaging.sms.ovh import OvhSmsProvider
from shared.runtime import Runtime
from tests.ingest.conftest import IngestFactory
from tests.support.clock import Clock
from tests.support.fake_ovh import FakeOvh, serve_fake_ovh
from tests.support.harness import RunningService, eventually, publish_events

PHONE = "+33612345678"
KEY = b"dev-only-privacy-key"  # ServiceSettings' default privacy_hmac_key


def sent_envelope(event: LeadMessageSentV1) -> Envelope:
    return Envelope(
        source="/vo-leads/qualify",
        type="lead.message-sent.v1",
        subject=event.lead_id,
        data=event.model_dump(mode="json"),
    )


@dataclass
class Sms:
    service: RunningService
    ovh: FakeOvh
    clock: Clock

    @property
    def runtime(self) -> Runtime[Any]:
        runtime: Runtime[Any] = self.service.app.state.runtime
        return runtime

    async def lead(self, phone: str = PHONE) -> str:
        answer = await self.service.client.post(
            "/v1/leads",
            json={
                "source": "leboncoin",
                "source_ref": f"lbc-{uuid.uuid4()}",
                "contact": {"full_name": "Hélène Gaël", "phone": phone},
            },
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    async def sent(self, lead_id: str, *, at: datetime | None = None) -> str:
        """qualify's ``lead.message-sent.v1`` for an SMS, as ingest's consumer applies it."""
        message_id = str(uuid.uuid4())
        event = LeadMessageSentV1(
            lead_id=lead_id,
            message_id=message_id,
            channel="sms",
            kind="first_answer",
            created_at=at or self.clock(),
            sent_at=at or self.clock(),
        )
        envelope = sent_envelope(event)
        async with session_scope(self.runtime.session_factory) as session:
            await sms_sent_handler(KEY)(session, envelope)
        return message_id

    async def poll(self, inbox: SmsInbox | None = None) -> int:
        inbox = inbox or SmsInbox(self.runtime)
        try:
            return await inbox.poll_once()
        finally:
            await inbox.close()

    async def received(self) -> list[dict[str, Any]]:
        table = infra.outbox_event
        async with self.runtime.session_factory() as session:
            values = await session.scalars(
                select(table.c.value)
                .where(table.c.event_type == "lead.message-received.v1")
                .order_by(table.c.id)
            )
            return [json.loads(value) for value in values]


@pytest.fixture
def sms_service(ingest_service: IngestFactory) -> Any:
    @asynccontextmanager
    async def start(**values: Any) -> AsyncIterator[Sms]:
        clock = Clock(now=utcnow())
        async with serve_fake_ovh() as ovh:
            settings = {**ovh.settings().model_dump(), **values}
            async with ingest_service(clock=clock, **settings) as service:
                yield Sms(service, ovh, clock)

    return start


async def test_a_reply_joins_the_lead_and_is_then_acknowledged(sms_service: Any) -> None:
    async with sms_service() as sms:
        lead_id = await sms.lead()
        answered = await sms.sent(lead_id)
        incoming = sms.ovh.receive("0033612345678", "Oui, rappelez-moi après 18 h.")
        assert await sms.poll() == 1
        [event] = await sms.received()
        assert event["lead_id"] == lead_id
        assert event["message_id"] == f"sms-ovh-{incoming}"
        assert event["channel"] == "sms"
        assert event["sender"] == PHONE
        assert event["text"] == "Oui, rappelez-moi après 18 h."
        assert event["in_reply_to"] == answered
        assert event["stop_request"] is False
        assert event["subject"] is None
        assert sms.ovh.incoming == {}  # acknowledged: deleted at the provider
        async with sms.runtime.session_factory() as session:
            raw = await session.scalar(select(RawInput).where(RawInput.channel == "sms"))
        assert raw is not None
        assert (raw.outcome, raw.lead_id) == ("reply", lead_id)  # kept 30 days, erasable


async def test_stop_asks_to_stop(sms_service: Any) -> None:
    async with sms_service() as sms:
        await sms.sent(await sms.lead())
        sms.ovh.receive(PHONE, "STOP")
        sms.ovh.receive(PHONE, "Arrêt")
        sms.ovh.receive(PHONE, "Ne stoppez rien, je rappelle")
        await sms.poll()
        assert [event["stop_request"] for event in await sms.received()] == [True, True, False]


async def test_the_lead_most_recently_texted_at_that_number_gets_the_reply(
    sms_service: Any,
) -> None:
    async with sms_service() as sms:
        older, newer, elsewhere = await sms.lead(), await sms.lead(), await sms.lead("0798765432")
        first = await sms.sent(older, at=sms.clock() - timedelta(days=2))
        await sms.sent(newer, at=sms.clock() - timedelta(hours=1))
        await sms.sent(elsewhere)
        sms.ovh.receive(PHONE, "C'est pour la Clio")
        # OVH names the SMS answered when it can (its tag: qualify's message id).
        sms.ovh.receive(PHONE, "Et pour la 208 ?", tag=first)
        await sms.poll()
        assert [(e["lead_id"], e["text"]) for e in await sms.received()] == [
            (newer, "C'est pour la Clio"),
            (older, "Et pour la 208 ?"),
        ]


async def test_a_crash_before_the_acknowledgement_publishes_nothing_twice(
    sms_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sms_service() as sms:
        await sms.sent(await sms.lead())
        sms.ovh.receive(PHONE, "Oui")

        async def dies(self: OvhSmsProvider, provider_message_id: str) -> None:
            raise ConnectionResetError("the process died here")

        monkeypatch.setattr(OvhSmsProvider, "acknowledge_inbound", dies)
        with pytest.raises(ConnectionResetError):
            await sms.poll()
        monkeypatch.undo()
        assert len(sms.ovh.incoming) == 1  # still at the provider
        assert len(await sms.received()) == 1  # but recorded and committed

        assert await sms.poll() == 1  # fetched again: known, acknowledged
        assert sms.ovh.incoming == {}
        assert len(await sms.received()) == 1
        async with sms.runtime.session_factory() as session:
            count = await session.scalar(select(func.count()).select_from(InboundMessage))
        assert count == 1


async def test_an_unknown_sender_waits_then_is_recorded_as_ignored(sms_service: Any) -> None:
    async with sms_service(sms_inbound_match_wait_s=600) as sms:
        await sms.lead()  # a lead with that phone, but never sent an SMS
        sms.ovh.receive(PHONE, "Bonjour ?")
        assert await sms.poll() == 0
        assert len(sms.ovh.incoming) == 1  # waits: the SMS it answers may not be known yet
        sms.clock.advance(minutes=11)
        assert await sms.poll() == 1
        assert sms.ovh.incoming == {}
        assert await sms.received() == []
        ignored = (await sms.service.client.get("/v1/ignored")).json()["items"]
        assert [(item["channel"], item["reason"]) for item in ignored] == [
            ("sms", "sms_sender_unknown")
        ]


async def test_only_sms_to_known_leads_are_remembered(sms_service: Any) -> None:
    async with sms_service() as sms:
        lead_id = await sms.lead()
        await sms.sent(str(uuid.uuid4()))  # a lead ingest does not have (erased)
        await sms.sent(lead_id)
        await sms.sent(lead_id)
        async with sms.runtime.session_factory() as session:
            rows = list(await session.scalars(select(OutboundSms)))
        assert [row.lead_id for row in rows] == [lead_id, lead_id]
        assert all(PHONE not in row.phone_hash for row in rows)  # a keyed hash only


async def test_the_worker_matches_and_publishes(ingest_service: IngestFactory) -> None:
    async with serve_fake_ovh() as ovh:
        settings = {**ovh.settings().model_dump(), "sms_inbound_poll_interval_s": 0.1}
        async with ingest_service(worker=True, **settings) as service:
            answer = await service.client.post(
                "/v1/leads",
                json={"source": "api", "source_ref": "r-1", "contact": {"phone": PHONE}},
            )
            lead_id = answer.json()["id"]
            event = LeadMessageSentV1(
                lead_id=lead_id,
                message_id=str(uuid.uuid4()),
                channel="sms",
                kind="first_answer",
                created_at=utcnow(),
                sent_at=utcnow(),
            )
            await publish_events(service.settings, [sent_envelope(event)])
            runtime: Runtime[Any] = service.app.state.runtime

            async def remembered() -> int:
                async with runtime.session_factory() as session:
                    return int(
                        await session.scalar(select(func.count()).select_from(OutboundSms)) or 0
                    )

            await eventually(remembered)
            ovh.receive(PHONE, "stop")

            async def published() -> InboundMessage | None:
                async with runtime.session_factory() as session:
                    return await session.scalar(select(InboundMessage))

            message = await eventually(published)
            assert (message.lead_id, message.stop_request) == (lead_id, True)
            await eventually(lambda: _acknowledged(ovh))


async def _acknowledged(ovh: FakeOvh) -> bool:
    return not ovh.incoming


def test_only_sent_sms_are_wanted_e_mails_are_ignored_without_a_transaction() -> None:
    handler = sms_sent_handler(KEY)
    assert isinstance(handler, Selective)

    def sent(channel: str) -> Envelope:
        now = utcnow()
        return sent_envelope(
            LeadMessageSentV1(
                lead_id=str(uuid.uuid4()),
                message_id=str(uuid.uuid4()),
                channel=channel,  # type: ignore[arg-type]
                kind="first_answer",
                created_at=now,
                sent_at=now,
            )
        )

    assert handler.wants(sent("sms"))
    assert not handler.wants(sent("email"))
