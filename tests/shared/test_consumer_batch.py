"""A polled batch is handled in one transaction with a constant number of statements; one bad
event sends the batch back to one event at a time (the others applied once, the bad one
dead-lettered); duplicates within and across batches and erased leads stay without effect;
types a consumer does not handle are skipped from their header, before decoding. On SQLite +
the embedded bus and on PostgreSQL + Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import Consumer, Record
from shared.consumer import EventConsumer, Handler, Selective, merge_handlers
from shared.events import Envelope, Topics
from shared.metrics import ServiceMetrics
from shared.privacy import remember_erased
from tests.support.harness import eventually
from tests.support.infra import create_database, drop_database, require_kafka
from tests.support.messaging import (
    Harness,
    MessagingSettings,
    effect,
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


def consumer_for(
    harness: Harness,
    handlers: dict[str, Handler] | None = None,
    metrics: ServiceMetrics | None = None,
) -> EventConsumer:
    return EventConsumer(
        service="messaging-test",
        name="test.batch",
        bus=harness.bus,
        topics=[Topics.LEADS],
        handlers=handlers or {"lead.received.v1": record_effect},
        session_factory=harness.sessions,
        infra=infra,
        metrics=metrics or ServiceMetrics("messaging-test"),
        max_attempts=2,
        retry_backoff_s=0.01,
    )


def event(label: str, *, subject: str = "lead-1", **extra: object) -> Envelope:
    return Envelope(
        source="/test", type="lead.received.v1", subject=subject, data={"label": label, **extra}
    )


async def publish(harness: Harness, *envelopes: Envelope) -> None:
    await harness.bus.publish_many(
        [
            (Topics.LEADS, envelope.to_key(), envelope.to_value(), envelope.to_headers())
            for envelope in envelopes
        ]
    )


@asynccontextmanager
async def polled(harness: Harness, count: int) -> AsyncIterator[tuple[Consumer, list[Record]]]:
    """A reader of the consumer's group and the next ``count`` records it polled."""
    reader = harness.bus.consumer(group_id="test.batch", topics=[Topics.LEADS])
    await reader.start()
    records: list[Record] = []
    try:

        async def enough() -> bool:
            records.extend(await reader.poll(timeout_s=0.5, max_records=count - len(records)))
            return len(records) >= count

        await eventually(enough, timeout_s=60)
        yield reader, records
    finally:
        await reader.stop()


@contextmanager
def statements(harness: Harness) -> Iterator[list[str]]:
    """The SQL statements sent to the database meanwhile (one per round trip)."""
    sent: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    engine = harness.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


def consumed(metrics: ServiceMetrics, outcome: str) -> float | None:
    """The consumer's count of lead.received events with this outcome."""
    labels = {
        "service": "messaging-test",
        "consumer": "test.batch",
        "event_type": "lead.received.v1",
        "outcome": outcome,
    }
    return metrics.registry.get_sample_value("events_consumed_total", labels)


async def noop(session: AsyncSession, envelope: Envelope) -> None:
    """A handler without SQL of its own: what is counted is the consumer's bookkeeping."""


async def test_a_batch_costs_the_same_statements_whatever_its_size(harness: Harness) -> None:
    consumer = consumer_for(harness, {"lead.received.v1": noop})
    await publish(harness, event("alone"))
    async with polled(harness, 1) as (reader, records):
        with statements(harness) as one:
            assert await consumer.process_batch(reader, records)
    await publish(harness, *(event(f"many-{n}", subject=f"lead-{n}") for n in range(25)))
    async with polled(harness, 25) as (reader, records):
        with statements(harness) as many:
            assert await consumer.process_batch(reader, records)
    assert len(many) == len(one)
    # PostgreSQL: the claim and the erased check are one statement (BEGIN and COMMIT are not
    # cursor executions); SQLite: two.
    assert len(one) <= 2
    assert await harness.count(infra.processed_event) == 26


async def test_one_bad_event_falls_back_to_one_at_a_time(harness: Harness) -> None:
    await publish(
        harness, event("a"), event("b"), event("poison", poison=True), event("c"), event("d")
    )
    consumer = consumer_for(harness)
    async with polled(harness, 5) as (reader, records):
        assert await consumer.process_batch(reader, records)
    assert await harness.effects() == ["a", "b", "c", "d"]  # each once, in order
    assert await harness.count(infra.dead_letter) == 1
    assert await harness.count(infra.processed_event) == 4
    async with harness.sessions() as session:
        dead = await session.scalar(select(infra.dead_letter.c.event_type))
    assert dead == "lead.received.v1"


async def test_duplicates_within_and_across_batches_have_one_effect(harness: Harness) -> None:
    first, second, third = event("first"), event("second"), event("third")
    await publish(harness, first, first, second)
    metrics = ServiceMetrics("messaging-test")
    consumer = consumer_for(harness, metrics=metrics)
    async with polled(harness, 3) as (reader, records):
        assert await consumer.process_batch(reader, records)
    await publish(harness, second, third, first)
    async with polled(harness, 3) as (reader, records):
        assert await consumer.process_batch(reader, records)
    assert await harness.effects() == ["first", "second", "third"]
    assert await harness.count(infra.processed_event) == 3
    duplicates = consumed(metrics, "duplicate")
    assert duplicates == 3


async def test_events_of_erased_leads_in_a_batch_store_nothing(harness: Harness) -> None:
    async with harness.sessions() as session:
        await remember_erased(session, infra.erased_subject, ["lead-gone"])
        await session.commit()
    await publish(harness, event("kept"), event("late", subject="lead-gone"), event("also"))
    consumer = consumer_for(harness)
    async with polled(harness, 3) as (reader, records):
        assert await consumer.process_batch(reader, records)
    assert await harness.effects() == ["kept", "also"]
    assert await harness.count(infra.processed_event) == 3  # the erased one is done with too


async def test_types_not_handled_are_skipped_before_decoding(harness: Harness) -> None:
    """A record whose ``ce_type`` this consumer does not handle is not decoded: not even a body
    that is no JSON sends it to the DLQ (a consumer that handles the type would)."""
    other = Envelope(source="/test", type="lead.qualified.v1", subject="lead-1", data={})
    await harness.bus.publish(
        Topics.LEADS, key=b"lead-1", value=b"{not json", headers=other.to_headers()
    )
    await publish(harness, event("handled"))
    consumer = consumer_for(harness)
    async with polled(harness, 2) as (reader, records):
        assert await consumer.process_batch(reader, records)
    assert await harness.effects() == ["handled"]
    assert await harness.count(infra.dead_letter) == 0
    assert await harness.count(infra.processed_event) == 1
    # Both offsets are committed: a new reader of the group finds nothing left.
    reader = harness.bus.consumer(group_id="test.batch", topics=[Topics.LEADS])
    await reader.start()
    try:
        assert await reader.poll(timeout_s=1.0, max_records=10) == []
    finally:
        await reader.stop()


async def test_events_a_selective_handler_does_not_want_open_no_transaction(
    harness: Harness,
) -> None:
    """A ``Selective`` handler's unwanted events are ignored from the decoded event: no claim,
    no statement at all, whether in a batch or one at a time; the wanted ones are applied."""
    metrics = ServiceMetrics("messaging-test")
    selective = Selective(record_effect, wants=lambda envelope: envelope.data.get("wanted") is True)
    consumer = consumer_for(harness, {"lead.received.v1": selective}, metrics=metrics)
    await publish(harness, event("skipped-1"), event("skipped-2", subject="lead-2"))
    async with polled(harness, 2) as (reader, records):
        with statements(harness) as batch:
            assert await consumer.process_batch(reader, records)
        with statements(harness) as alone:
            await consumer.handle(records[0])
    assert (batch, alone) == ([], [])
    assert await harness.count(infra.processed_event) == 0
    await publish(harness, event("taken", wanted=True), event("skipped-3"))
    async with polled(harness, 2) as (reader, records):
        assert await consumer.process_batch(reader, records)
    assert await harness.effects() == ["taken"]
    assert await harness.count(infra.processed_event) == 1
    ignored = consumed(metrics, "ignored")
    assert ignored == 4  # three in batches, one alone


@pytest.mark.postgres
@pytest.mark.kafka
async def test_two_replicas_handling_the_same_batch_apply_each_event_once(
    tmp_path: Path,
) -> None:
    """A rebalance can hand the same records to two replicas at once: the second claim waits
    for the first transaction and finds the events claimed."""
    url = await create_database()
    settings = MessagingSettings(
        database_url=url,
        bus="kafka",
        kafka_bootstrap_servers=await require_kafka(),
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        topic_partitions=1,
    )
    try:
        async with messaging_harness(settings) as harness:
            entered = asyncio.Event()

            async def slow_effect(session: AsyncSession, envelope: Envelope) -> None:
                await record_effect(session, envelope)
                entered.set()
                await asyncio.sleep(0.3)  # the other replica claims meanwhile

            handlers: dict[str, Handler] = {"lead.received.v1": slow_effect}
            await publish(harness, *(event(f"e{n}", subject=f"lead-{n}") for n in range(10)))
            async with polled(harness, 10) as (reader, records):
                one, two = consumer_for(harness, handlers), consumer_for(harness, handlers)
                first = asyncio.create_task(one.process_batch(reader, records))
                await entered.wait()
                assert await two.process_batch(reader, list(reversed(records)))
                assert await first
            async with harness.sessions() as session:
                labels = (await session.scalars(select(effect.c.label))).all()
            assert sorted(labels) == sorted(f"e{n}" for n in range(10))
            assert await harness.count(infra.processed_event) == 10
    finally:
        await drop_database(url)


async def test_offsets_go_to_the_bus_at_most_every_interval_and_at_the_end(
    harness: Harness,
) -> None:
    """A steady trickle (a batch per event) commits offsets about once per interval, not once
    per batch (a commit is a broker round trip); stopping commits what was handled."""
    consumer = EventConsumer(
        service="messaging-test",
        name="test.batch",
        bus=harness.bus,
        topics=[Topics.LEADS],
        handlers={"lead.received.v1": record_effect},
        session_factory=harness.sessions,
        infra=infra,
        metrics=ServiceMetrics("messaging-test"),
        commit_interval_s=1.0,
    )
    commits: list[dict[tuple[str, int], int]] = []
    make_consumer = harness.bus.consumer

    def counting(*, group_id: str, topics: list[str], batch_wait_s: float = 0.0) -> Consumer:
        reader = make_consumer(group_id=group_id, topics=topics, batch_wait_s=batch_wait_s)
        commit = reader.commit

        async def counted(offsets: Mapping[tuple[str, int], int]) -> None:
            commits.append(dict(offsets))
            await commit(offsets)

        reader.commit = counted  # type: ignore[method-assign]
        return reader

    harness.bus.consumer = counting  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for n in range(40):
            await publish(harness, event(f"e{n}", subject=f"lead-{n}"))
            await asyncio.sleep(0.05)  # a poll never stays empty for long: no idle commit

        async def all_applied() -> bool:
            return await harness.count(infra.processed_event) == 40

        await eventually(all_applied, timeout_s=60)
    finally:
        stop.set()
        await task
    assert len(commits) <= 10  # about one per second of the trickle, and the last ones
    harness.bus.consumer = make_consumer  # type: ignore[method-assign]
    reader = harness.bus.consumer(group_id="test.batch", topics=[Topics.LEADS])
    await reader.start()
    try:
        assert await reader.poll(timeout_s=1.0, max_records=10) == []  # everything committed
    finally:
        await reader.stop()


async def test_merged_handlers_run_in_turn_in_one_transaction(harness: Harness) -> None:
    """Two sets of handlers as one consumer (one pass): a type both handle runs both, in order;
    when the second fails the first's effect is rolled back with it (then the DLQ)."""
    seen: list[str] = []

    async def first(session: AsyncSession, envelope: Envelope) -> None:
        await record_effect(session, envelope)
        seen.append(f"first:{envelope.data['label']}")

    async def second(session: AsyncSession, envelope: Envelope) -> None:
        seen.append(f"second:{envelope.data['label']}")
        if envelope.data.get("second_fails"):
            raise ValueError("the second handler fails")

    handlers = merge_handlers({"lead.received.v1": first}, {"lead.received.v1": second})
    await publish(harness, event("both"), event("bad", second_fails=True))
    consumer = consumer_for(harness, handlers)
    async with polled(harness, 2) as (reader, records):
        assert await consumer.process_batch(reader, records)
    assert seen[:2] == ["first:both", "second:both"]
    assert await harness.effects() == ["both"]  # "bad" left nothing: one transaction
    assert await harness.count(infra.dead_letter) == 1
