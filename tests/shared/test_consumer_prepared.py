"""On PostgreSQL a batch's claim goes to the driver as SQL compiled once with positional
arguments (``shared.db.prepared``): no SQLAlchemy compilation or parameter building per batch.
What it claims and finds erased is what the compiled statement did; a batch costs the same
round trips (BEGIN, the claim, COMMIT: the handlers' own aside) whatever its size. SQLite keeps
its two compiled statements."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import Record
from shared.consumer import EventConsumer
from shared.events import Envelope, Topics
from shared.metrics import ServiceMetrics
from shared.privacy import remember_erased
from tests.support.executed import Sent, sent
from tests.support.infra import create_database, drop_database
from tests.support.messaging import (
    Harness,
    MessagingSettings,
    effect,
    infra,
    messaging_harness,
    record_effect,
)


@dataclass
class Traffic:
    sent: list[Sent]
    begun: int = 0


@contextmanager
def traffic(harness: Harness) -> Iterator[Traffic]:
    """The statements sent to the driver meanwhile, and the transactions begun."""
    engine = harness.engine.sync_engine
    with sent(harness.engine) as statements:
        seen = Traffic(statements)

        def begin(connection: Any) -> None:
            seen.begun += 1

        event.listen(engine, "begin", begin)
        try:
            yield seen
        finally:
            event.remove(engine, "begin", begin)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """The messaging test service on SQLite or PostgreSQL, with the embedded bus (the records
    are handed to the consumer as a poll returns them: no bus needed)."""
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        if request.param == "sqlite"
        else await create_database()
    )
    settings = MessagingSettings(
        database_url=url, bus="embedded", embedded_bus_path=tmp_path / "bus.db"
    )
    try:
        async with messaging_harness(settings) as built:
            yield built
    finally:
        if request.param == "postgres":
            await drop_database(url)


def consumer_for(harness: Harness, metrics: ServiceMetrics | None = None) -> EventConsumer:
    return EventConsumer(
        service="messaging-test",
        name="test.prepared",
        bus=harness.bus,
        topics=[Topics.LEADS],
        handlers={"lead.received.v1": record_effect},
        session_factory=harness.sessions,
        infra=infra,
        metrics=metrics or ServiceMetrics("messaging-test"),
        max_attempts=2,
        retry_backoff_s=0.01,
    )


class Polled:
    """Records as a poll returns them, at increasing offsets."""

    def __init__(self) -> None:
        self._offset = 0

    def __call__(self, *envelopes: Envelope) -> list[Record]:
        records = []
        for envelope in envelopes:
            records.append(
                Record(
                    Topics.LEADS,
                    0,
                    self._offset,
                    envelope.to_key(),
                    envelope.to_value(),
                    envelope.to_headers(),
                )
            )
            self._offset += 1
        return records


def event_(label: str, *, subject: str | None = None) -> Envelope:
    return Envelope(
        source="/test",
        type="lead.received.v1",
        subject=subject or f"lead-{uuid.uuid4().hex[:8]}",
        data={"label": label},
    )


def claims(seen: Traffic) -> list[Sent]:
    return [item for item in seen.sent if "processed_event" in item.sql]


async def handled(consumer: EventConsumer, records: list[Record]) -> None:
    reader: Any = None  # only a rewind (an outage) would use it
    offsets, ok = await consumer.handle_batch(reader, records)
    assert ok
    assert offsets == {(Topics.LEADS, 0): records[-1].offset + 1}


async def test_the_claim_runs_prepared_on_postgresql_with_constant_round_trips(
    harness: Harness,
) -> None:
    consumer = consumer_for(harness)
    polled = Polled()
    with traffic(harness) as one:
        await handled(consumer, polled(event_("alone")))
    with traffic(harness) as ten:
        await handled(consumer, polled(*(event_(f"many-{n}") for n in range(10))))
    postgres = harness.engine.dialect.name == "postgresql"
    for seen, size in ((one, 1), (ten, 10)):
        assert seen.begun == 1  # one transaction per batch
        bookkeeping = claims(seen)
        # PostgreSQL: the claim and the erased look-up are one statement; SQLite: two.
        assert len(bookkeeping) == 1
        assert len(seen.sent) == size + (1 if postgres else 2)  # the handler's inserts aside
        if postgres:
            assert not bookkeeping[0].compiled  # main compiled a text() through the session
            assert isinstance(bookkeeping[0].parameters, tuple)
        else:
            assert all(item.compiled for item in seen.sent)  # SQLite: as it was
    assert await harness.effects() == ["alone", *(f"many-{n}" for n in range(10))]
    assert await harness.count(infra.processed_event) == 11


async def test_prepared_claims_skip_duplicates_and_erased_leads(harness: Harness) -> None:
    async with harness.sessions() as session:
        await remember_erased(session, infra.erased_subject, ["lead-gone"])
        await session.commit()
    metrics = ServiceMetrics("messaging-test")
    consumer = consumer_for(harness, metrics)
    polled = Polled()
    first, second = event_("first"), event_("second")
    await handled(consumer, polled(first, first, event_("late", subject="lead-gone"), second))
    await handled(consumer, polled(second, event_("third"), first))
    assert await harness.effects() == ["first", "second", "third"]
    assert await harness.count(infra.processed_event) == 4  # the erased one is done with too
    async with harness.sessions() as session:
        types = set((await session.scalars(select(infra.processed_event.c.event_type))).all())
        stored = set((await session.scalars(select(effect.c.event_id))).all())
    assert types == {"lead.received.v1"}
    assert first.id in stored
    sample = metrics.registry.get_sample_value
    labels = {
        "service": "messaging-test",
        "consumer": "test.prepared",
        "event_type": "lead.received.v1",
    }
    assert sample("events_consumed_total", {**labels, "outcome": "duplicate"}) == 3
    assert sample("events_consumed_total", {**labels, "outcome": "erased"}) == 1
    assert sample("events_consumed_total", {**labels, "outcome": "applied"}) == 3
    assert sample("event_lag_seconds_count", labels) == 3  # one per event applied


async def test_a_failing_handler_still_falls_back_to_one_at_a_time(harness: Harness) -> None:
    """The prepared claim runs in the batch's transaction: rolled back with it, the events are
    claimed again one at a time (the bad one dead-lettered, the others applied once)."""
    consumer = consumer_for(harness)
    polled = Polled()
    poison = Envelope(
        source="/test",
        type="lead.received.v1",
        subject="lead-p",
        data={"label": "p", "poison": True},
    )
    records = polled(event_("a"), poison, event_("b"))
    await handled(consumer, records)
    assert await harness.effects() == ["a", "b"]
    assert await harness.count(infra.processed_event) == 2
    assert await harness.count(infra.dead_letter) == 1


async def test_handlers_log_with_the_event_bound_and_unbound_after(harness: Harness) -> None:
    """The handler sees its event's log context; nothing of it is left bound afterwards."""
    seen: list[dict[str, Any]] = []

    async def logging_handler(session: AsyncSession, envelope: Envelope) -> None:
        seen.append(structlog.contextvars.get_contextvars())

    consumer = EventConsumer(
        service="messaging-test",
        name="test.prepared",
        bus=harness.bus,
        topics=[Topics.LEADS],
        handlers={"lead.received.v1": logging_handler},
        session_factory=harness.sessions,
        infra=infra,
        metrics=ServiceMetrics("messaging-test"),
    )
    one, two = event_("one"), event_("two")
    structlog.contextvars.bind_contextvars(consumer="outer")
    # What was bound before (other tests' keys may be there too): exactly that is left after.
    before = structlog.contextvars.get_contextvars()
    try:
        await handled(consumer, Polled()(one, two))
        after = structlog.contextvars.get_contextvars()
    finally:
        structlog.contextvars.unbind_contextvars("consumer")
    assert [(item["event_id"], item["subject"]) for item in seen] == [
        (one.id, one.subject),
        (two.id, two.subject),
    ]
    assert {item["consumer"] for item in seen} == {"test.prepared"}
    assert before["consumer"] == "outer"
    assert after == before
