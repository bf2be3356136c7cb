"""Idempotent consumer and dead-letter queue, on the embedded bus and on real Kafka + PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.consumer import EventConsumer
from shared.events import Envelope, Topics
from shared.metrics import ServiceMetrics
from shared.privacy import remember_erased
from tests.support.harness import eventually
from tests.support.infra import create_database, drop_database, require_kafka
from tests.support.messaging import (
    Harness,
    MessagingSettings,
    infra,
    messaging_harness,
    record_effect,
)

BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("kafka", id="kafka", marks=[pytest.mark.postgres, pytest.mark.kafka]),
]


@pytest.fixture(params=BACKENDS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    if request.param == "embedded":
        settings = MessagingSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
            bus="embedded",
            embedded_bus_path=tmp_path / "bus.db",
        )
    else:
        url = await create_database()
        settings = MessagingSettings(
            database_url=url,
            bus="kafka",
            kafka_bootstrap_servers=await require_kafka(),
            topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
            topic_partitions=1,
        )
    try:
        async with messaging_harness(settings) as built:
            yield built
    finally:
        if settings.bus == "kafka":
            await drop_database(settings.resolved_database_url())


def consumer_for(harness: Harness, name: str = "test.consumer") -> EventConsumer:
    return EventConsumer(
        service="messaging-test",
        name=name,
        bus=harness.bus,
        topics=[Topics.LEADS],
        handlers={"lead.received.v1": record_effect},
        session_factory=harness.sessions,
        infra=infra,
        metrics=ServiceMetrics("messaging-test"),
        max_attempts=3,
        retry_backoff_s=0.01,
    )


async def publish(harness: Harness, envelope: Envelope) -> None:
    await harness.bus.publish(
        Topics.LEADS, key=b"lead-1", value=envelope.to_value(), headers=envelope.to_headers()
    )


def event(label: str, **extra: object) -> Envelope:
    return Envelope(
        source="/test", type="lead.received.v1", subject="lead-1", data={"label": label, **extra}
    )


async def run_until(consumer: EventConsumer, condition: object) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await eventually(condition, timeout_s=60)  # type: ignore[arg-type]
    finally:
        stop.set()
        await task


async def test_same_event_delivered_twice_has_one_effect(harness: Harness) -> None:
    first = event("first")
    await publish(harness, first)
    await publish(harness, first)  # redelivery of the very same event id
    await publish(harness, event("second"))

    async def both_seen() -> bool:
        return await harness.effects() == ["first", "second"]

    await run_until(consumer_for(harness), both_seen)
    assert await harness.effects() == ["first", "second"]
    assert await harness.count(infra.processed_event) == 2

    # A consumer restarted from scratch (offsets lost) re-reads all three: still no new effect.
    async def all_processed_again() -> bool:
        return await harness.count(infra.processed_event) == 2

    await run_until(consumer_for(harness), all_processed_again)
    await asyncio.sleep(0.3)
    assert await harness.effects() == ["first", "second"]


async def test_poison_goes_to_dlq_and_does_not_block(harness: Harness) -> None:
    await publish(harness, event("before"))
    poison = event("poison", poison=True)
    await publish(harness, poison)
    await harness.bus.publish(Topics.LEADS, key=b"x", value=b"not a cloudevent", headers=[])
    await publish(harness, event("after"))

    async def after_seen() -> bool:
        return await harness.effects() == ["before", "after"]

    await run_until(consumer_for(harness), after_seen)
    assert await harness.count(infra.dead_letter) == 2

    dlq = harness.bus.consumer(group_id="dlq-reader", topics=[Topics.dlq(Topics.LEADS)])
    await dlq.start()
    try:
        records = []

        async def two_dead() -> bool:
            records.extend(await dlq.poll(timeout_s=0.5, max_records=10))
            return len(records) >= 2

        await eventually(two_dead, timeout_s=60)
    finally:
        await dlq.stop()
    headers = [dict(record.headers) for record in records]
    assert headers[0]["ce_id"] == poison.id.encode()
    assert headers[0]["dlq_error"].startswith(b"ValueError")
    assert headers[0]["dlq_attempts"] == b"3"
    assert headers[1]["dlq_error"].startswith(b"EnvelopeError")
    assert records[1].value == b"not a cloudevent"


async def test_lag_counts_records_not_yet_read(harness: Harness) -> None:
    for label in ("a", "b", "c"):
        await publish(harness, event(label))
    consumer = harness.bus.consumer(group_id="lag-check", topics=[Topics.LEADS])
    await consumer.start()
    try:
        first: list[object] = []

        async def one_read() -> bool:
            first.extend(await consumer.poll(timeout_s=0.5, max_records=1))
            return bool(first)

        await eventually(one_read, timeout_s=60)
        lags = await consumer.lag()
        assert sum(lags.values()) == 2
        assert {topic for topic, _ in lags} == {Topics.LEADS}
    finally:
        await consumer.stop()


async def test_events_of_erased_leads_are_skipped(harness: Harness) -> None:
    async with harness.sessions() as session:
        await remember_erased(session, infra.erased_subject, ["lead-gone"])
        await session.commit()
    late = Envelope(
        source="/test", type="lead.received.v1", subject="lead-gone", data={"label": "late"}
    )
    await harness.bus.publish(
        Topics.LEADS, key=b"lead-gone", value=late.to_value(), headers=late.to_headers()
    )
    await publish(harness, event("kept"))

    async def kept_seen() -> bool:
        return await harness.effects() == ["kept"]

    await run_until(consumer_for(harness), kept_seen)
    assert await harness.effects() == ["kept"]  # the erased lead's late event stored nothing
    assert await harness.count(infra.processed_event) == 2
