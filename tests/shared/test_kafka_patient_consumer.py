"""A patient consumer (``batch_wait_s``) lets a busy topic's records gather and takes them in a
few large batches (a few fetches and transactions a second, not one per record), while a record
after a quiet spell is fetched at once; an eager consumer takes each record as it comes."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import pytest

from shared.bus.kafka import KafkaBus
from shared.bus.protocol import Consumer, TopicSpec
from tests.support.infra import require_kafka

pytestmark = pytest.mark.kafka

TOPIC = "patience"
RECORDS = 30
SPACING_S = 0.02  # a lead event every 20 ms: 50 a second, a busy hour's vo.leads
WAIT_S = 1.0


async def _batches(consumer: Consumer, wanted: int) -> list[int]:
    """The sizes of the non-empty polls that brought ``wanted`` records."""
    sizes: list[int] = []
    deadline = time.monotonic() + 30
    while sum(sizes) < wanted and time.monotonic() < deadline:
        records = await consumer.poll(timeout_s=0.2, max_records=100)
        if records:
            sizes.append(len(records))
    return sizes


async def _publish_spaced(bus: KafkaBus, count: int) -> float:
    """Publish ``count`` records ``SPACING_S`` apart; returns the seconds it took."""
    started = time.monotonic()
    for n in range(count):
        await bus.publish(TOPIC, key=str(n % 3).encode(), value=b"x" * 300, headers=[])
        await asyncio.sleep(SPACING_S)
    return time.monotonic() - started


async def _started(bus: KafkaBus, group: str, batch_wait_s: float) -> Consumer:
    consumer = bus.consumer(group_id=group, topics=[TOPIC], batch_wait_s=batch_wait_s)
    await consumer.start()
    # Joined and assigned before the first record, so both consumers see the same stream.
    deadline = time.monotonic() + 30
    while not consumer.assigned() and time.monotonic() < deadline:
        await consumer.poll(timeout_s=0.2, max_records=1)
    return consumer


async def test_a_patient_consumer_takes_a_busy_stream_in_few_batches() -> None:
    bootstrap = await require_kafka()
    bus = KafkaBus(bootstrap, prefix=f"t{uuid.uuid4().hex[:10]}.", client_id="patience-test")
    await bus.ensure_topics([TopicSpec(TOPIC, partitions=3)])
    eager = await _started(bus, "eager", 0.0)
    patient = await _started(bus, "patient", WAIT_S)
    try:
        publishing = asyncio.create_task(_publish_spaced(bus, RECORDS))
        eager_sizes, patient_sizes = await asyncio.gather(
            _batches(eager, RECORDS), _batches(patient, RECORDS)
        )
        publishing_s = await publishing
        assert sum(eager_sizes) == sum(patient_sizes) == RECORDS
        # 30 records over ~0.6 s (longer on a busy machine): the broker held each of the
        # patient consumer's fetches for up to 1 s, so about one batch per second of it.
        assert len(patient_sizes) <= math.ceil(publishing_s / WAIT_S) + 2, patient_sizes
        assert len(eager_sizes) >= 3 * len(patient_sizes), (eager_sizes, patient_sizes)

        # A lone record is not held for the idle re-ask (5 s) but at most the wait.
        started = time.monotonic()
        await bus.publish(TOPIC, key=b"0", value=b"alone", headers=[])
        assert await _batches(patient, 1) == [1]
        assert time.monotonic() - started < WAIT_S + 1.5
    finally:
        await eager.stop()
        await patient.stop()
        await bus.stop()


async def _quiet(consumer: Consumer, seconds: float) -> None:
    """Polls through a quiet spell (the consumer sees that its stream went quiet)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await consumer.poll(timeout_s=0.5, max_records=100) == []


async def test_after_a_quiet_spell_a_patient_consumer_fetches_a_record_at_once() -> None:
    """A held fetch would keep a lone record up to the whole wait (3 s here; uniformly spread
    over it, so three records all under 0.6 s would be a 1-in-125 chance): once its stream has
    gone quiet the consumer is eager again, and it holds its fetches again once records flow."""
    bootstrap = await require_kafka()
    bus = KafkaBus(bootstrap, prefix=f"t{uuid.uuid4().hex[:10]}.", client_id="patience-test")
    await bus.ensure_topics([TopicSpec(TOPIC, partitions=3)])
    wait_s = 3.0
    patient = await _started(bus, "patient-quiet", wait_s)
    try:
        # Records flowed: the consumer holds its fetches.
        publishing = asyncio.create_task(_publish_spaced(bus, 10))
        assert sum(await _batches(patient, 10)) == 10
        await publishing
        await _quiet(patient, 2 * wait_s + 1)
        for n in range(3):
            started = time.monotonic()
            await bus.publish(TOPIC, key=str(n).encode(), value=b"alone", headers=[])
            assert await _batches(patient, 1) == [1]
            assert time.monotonic() - started < 0.6
            await _quiet(patient, 2 * wait_s + 1)
    finally:
        await patient.stop()
        await bus.stop()
