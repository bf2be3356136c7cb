"""crm reads its events in one pass: one consumer (one group) per topic, whose handlers for
an event (the client and its timeline, the SLA fact) run in one transaction with one
``processed_event`` row; an event one of them cannot handle leaves no effect of the other and is
dead-lettered once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from crm.models import TimelineEntry, infra
from crm.settings import CrmSettings
from crm.sla.models import sla_fact
from crm.worker import consumers
from shared.consumer import EventConsumer
from shared.db.session import session_scope
from shared.events import Envelope, Topics
from shared.metrics import ServiceMetrics
from shared.runtime import Runtime
from tests.crm.conftest import CrmFactory
from tests.support.harness import eventually, migrate


@asynccontextmanager
async def crm_worker(settings: CrmSettings) -> AsyncIterator[Runtime[CrmSettings]]:
    """crm's consumers of the lead events, running on a worker runtime."""
    await migrate(settings)
    runtime = await Runtime.open(settings, infra, ServiceMetrics("crm"), role="worker")
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop.run(stop)) for loop in lead_consumers(runtime)]
    try:
        yield runtime
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await runtime.close()


def lead_consumers(runtime: Runtime[CrmSettings]) -> list[EventConsumer]:
    return [
        loop
        for loop in consumers(runtime)
        if isinstance(loop, EventConsumer) and Topics.LEADS in loop.topics
    ]


async def publish(runtime: Runtime[CrmSettings], *envelopes: Envelope) -> None:
    for envelope in envelopes:
        await runtime.bus.publish(
            Topics.LEADS,
            key=envelope.to_key(),
            value=envelope.to_value(),
            headers=envelope.to_headers(),
        )


def received(lead_id: str, now: Any) -> Envelope:
    return Envelope(
        source="/tests",
        type="lead.received.v1",
        subject=lead_id,
        data={
            "lead_id": lead_id,
            "kind": "enquiry",
            "source": "api",
            "source_ref": lead_id,
            "received_at": now.isoformat(),
            "contact": {"full_name": "Inès Marchand", "phone": "+33698765432"},
            "vehicle": {},
        },
    )


def attempted(lead_id: str, now: Any, **overrides: Any) -> Envelope:
    data = {
        "lead_id": lead_id,
        "attempt_id": "a-1",
        "operator_id": "op-7",
        "channel": "phone",
        "outcome": "reached",
        "attempted_at": (now + timedelta(minutes=3)).isoformat(),
    } | overrides
    return Envelope(source="/tests", type="lead.contact-attempted.v1", subject=lead_id, data=data)


async def state(runtime: Runtime[CrmSettings], lead_id: str) -> dict[str, Any]:
    processed = infra.processed_event
    async with session_scope(runtime.session_factory) as session:
        entries = (
            await session.scalars(
                select(TimelineEntry.kind).where(TimelineEntry.lead_id == lead_id)
            )
        ).all()
        fact = (
            (await session.execute(select(sla_fact).where(sla_fact.c.lead_id == lead_id)))
            .mappings()
            .first()
        )
        rows = (await session.execute(select(processed.c.consumer, processed.c.event_id))).all()
        dead = (await session.execute(select(infra.dead_letter.c.consumer))).scalars().all()
    return {
        "timeline": sorted(entries),
        "fact": dict(fact) if fact else None,
        "processed": sorted((row.consumer, row.event_id) for row in rows),
        "dead_letters": list(dead),
    }


async def test_one_consumer_group_reads_the_lead_events(crm: CrmFactory) -> None:
    settings = crm.settings()
    await migrate(settings)
    runtime = await Runtime.open(settings, infra, ServiceMetrics("crm"), role="worker")
    try:
        readers: dict[str, list[str]] = {}
        for loop in consumers(runtime):  # once: the jobs register their metrics
            if isinstance(loop, EventConsumer):
                for topic in loop.topics:
                    readers.setdefault(topic, []).append(loop.name)
        assert readers[Topics.LEADS] == ["crm.leads"]
        assert readers[Topics.DIRECTORY] == ["crm.directory"]  # the sites' calendars
        assert all(len(names) == 1 for names in readers.values()), readers
    finally:
        await runtime.close()


async def test_a_lead_event_yields_its_timeline_entry_and_sla_fact_in_one_pass(
    crm: CrmFactory,
) -> None:
    async with crm_worker(crm.settings()) as runtime:
        lead_id = str(uuid.uuid4())
        now = runtime.clock()
        first, second = received(lead_id, now), attempted(lead_id, now)
        await publish(runtime, first, second)

        async def applied() -> dict[str, Any] | None:
            found = await state(runtime, lead_id)
            fact = found["fact"]
            return found if fact and fact["first_attempt_at"] and found["timeline"] else None

        found = await eventually(applied, timeout_s=20)
        assert found["timeline"] == ["lead.contact-attempted", "lead.received"]
        assert found["fact"]["received_at"] is not None
        assert found["fact"]["reached_at"] is not None
        # One bookkeeping row per event: the clients' and the SLA's effects share it.
        assert found["processed"] == sorted([("crm.leads", first.id), ("crm.leads", second.id)])


async def test_an_event_the_sla_cannot_read_leaves_no_timeline_entry_either(
    crm: CrmFactory,
) -> None:
    async with crm_worker(crm.settings(consumer_retry_backoff_s=0.05)) as runtime:
        lead_id = str(uuid.uuid4())
        now = runtime.clock()
        # The timeline copies known keys; the SLA reads the payload's model, which refuses it.
        bad = attempted(lead_id, now, attempted_at="not a time")
        good = attempted(lead_id, now, attempt_id="a-2")
        await publish(runtime, received(lead_id, now), bad, good)

        async def settled() -> dict[str, Any] | None:
            found = await state(runtime, lead_id)
            return found if found["dead_letters"] and len(found["timeline"]) == 2 else None

        found = await eventually(settled, timeout_s=30)
        assert found["dead_letters"] == ["crm.leads"]
        # The bad event's timeline entry was rolled back with the SLA's failure.
        assert found["timeline"] == ["lead.contact-attempted", "lead.received"]
        assert bad.id not in {event_id for _, event_id in found["processed"]}
        assert found["fact"]["first_attempt_at"] is not None
