"""The outbox relay on both databases: it publishes in staging order, batch after batch, deletes
exactly what the bus stored, and keeps (and counts the attempt on) what the bus refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import select, text

from ingest.bootstrap import SERVICE as INGEST
from shared.bus.protocol import BusUnavailable
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.session import SessionFactory
from shared.events.privacy import ExportProvidedV1
from shared.metrics import ServiceMetrics
from shared.outbox import OutboxRelay, event_source, stage
from tests.support.harness import migrate, settings_for
from tests.support.infra import create_database, drop_database
from tests.support.recording_bus import HeldBus, RecordingBus

OUTBOX = INGEST.infra.outbox_event


@pytest.fixture
async def sessions(ingest_database: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(ingest_database)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


async def stage_events(sessions: SessionFactory, subjects: Sequence[str]) -> None:
    async with session_scope(sessions) as session:
        for subject in subjects:
            share = ExportProvidedV1(
                request_id=f"export-{subject}",
                client_id=subject,
                service="ingest",
                data={},
                provided_at=datetime.now(UTC),
            )
            await stage(
                session,
                OUTBOX,
                source=event_source("ingest"),
                event_type="privacy.export-provided.v1",
                subject=subject,
                payload=share,
            )


def relay_for(sessions: SessionFactory, bus: RecordingBus, batch_size: int = 100) -> OutboxRelay:
    return OutboxRelay(
        service="ingest",
        session_factory=sessions,
        table=OUTBOX,
        bus=bus,  # type: ignore[arg-type]  # only publish_many is used by the relay
        metrics=ServiceMetrics("ingest"),
        batch_size=batch_size,
    )


async def pending(sessions: SessionFactory) -> list[tuple[str, int, str | None]]:
    async with sessions() as session:
        rows = await session.execute(
            select(OUTBOX.c.subject, OUTBOX.c.attempts, OUTBOX.c.last_error).order_by(OUTBOX.c.id)
        )
        return [(row.subject, row.attempts, row.last_error) for row in rows]


async def test_batches_are_published_in_staging_order_and_deleted(
    sessions: SessionFactory,
) -> None:
    # Staged in three transactions, in an order that is not the subjects' sort order.
    subjects = [f"client-{n:03d}" for n in range(25)][::-1]
    for start in range(0, 25, 10):
        await stage_events(sessions, subjects[start : start + 10])
    bus = RecordingBus()
    relay = relay_for(sessions, bus, batch_size=10)

    published = [await relay.relay_once() for _ in range(4)]

    assert published == [10, 10, 5, 0]
    assert bus.subjects() == subjects
    assert await pending(sessions) == []


async def test_a_refused_batch_stays_with_its_attempt_counted_then_goes_out_once(
    sessions: SessionFactory,
) -> None:
    await stage_events(sessions, ["client-b", "client-a", "client-c"])
    bus = RecordingBus(refuse=1)
    relay = relay_for(sessions, bus)

    with pytest.raises(BusUnavailable):
        await relay.relay_once()

    assert bus.published == []
    assert await pending(sessions) == [
        ("client-b", 1, "BusUnavailable: broker down"),
        ("client-a", 1, "BusUnavailable: broker down"),
        ("client-c", 1, "BusUnavailable: broker down"),
    ]
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 0
    assert bus.subjects() == ["client-b", "client-a", "client-c"]
    assert await pending(sessions) == []


@contextmanager
def asyncpg_round_trips() -> Iterator[list[str]]:
    """The statements sent to PostgreSQL by any asyncpg connection of this process, one per
    round trip: simple queries (BEGIN, COMMIT), executions of a cached or prepared statement."""
    sent: list[str] = []
    originals = [
        (asyncpg.Connection, "execute"),
        (asyncpg.Connection, "_do_execute"),
        (PreparedStatement, "_PreparedStatement__bind_execute"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name in originals]

    def counting(original: Any, name: str) -> Any:
        async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            query = self.get_query() if name.endswith("bind_execute") else args[0]
            sent.append(" ".join(str(query).split()))
            return await original(self, *args, **kwargs)

        return call

    for owner, name, original in saved:
        setattr(owner, name, counting(original, name))
    try:
        yield sent
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


@pytest.fixture
async def postgres_sessions() -> AsyncIterator[SessionFactory]:
    url = await create_database()
    await migrate(settings_for("ingest", database_url=url, bus="embedded"))
    engine = create_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()
        await drop_database(url)


@pytest.mark.postgres
async def test_on_postgresql_a_wake_costs_two_round_trips_and_an_idle_one_one(
    postgres_sessions: SessionFactory,
) -> None:
    """No BEGIN and COMMIT around the batch (main's relay: BEGIN, DELETE … RETURNING, COMMIT,
    even with nothing to publish): the locked read, then, once the bus has the events, the
    deletion with the lock's release."""
    sessions = postgres_sessions
    bus = RecordingBus()
    relay = relay_for(sessions, bus)
    try:
        await stage_events(sessions, ["client-0"])
        assert await relay.relay_once() == 1  # warm: the statements are prepared
        await stage_events(sessions, ["client-a"])
        with asyncpg_round_trips() as one_event:
            assert await relay.relay_once() == 1
        await stage_events(sessions, [f"client-{n}" for n in range(1, 51)])
        with asyncpg_round_trips() as fifty_events:
            assert await relay.relay_once() == 50
        with asyncpg_round_trips() as idle:
            assert await relay.relay_once() == 0
    finally:
        await relay.close()

    assert len(one_event) == 2, one_event
    assert one_event[0].startswith("WITH head AS MATERIALIZED"), one_event
    assert "DELETE" in one_event[1], one_event
    assert "pg_advisory_unlock" in one_event[1], one_event
    assert len(fifty_events) == 2, fifty_events
    assert len(idle) == 1, idle
    assert not [sql for sql in one_event + idle if sql.upper() in ("BEGIN", "COMMIT")]
    assert bus.subjects() == ["client-0", "client-a", *[f"client-{n}" for n in range(1, 51)]]
    assert await pending(sessions) == []


@pytest.mark.postgres
async def test_on_postgresql_one_relay_publishes_at_a_time_and_another_takes_over(
    postgres_sessions: SessionFactory,
) -> None:
    """Replicas: while one relay holds a batch (inside ``publish_many``), another publishes
    nothing; once the first is done it may; a relay whose connection died holds nothing."""
    sessions = postgres_sessions
    held = HeldBus()
    first, second = relay_for(sessions, held), relay_for(sessions, RecordingBus())
    try:
        await stage_events(sessions, ["client-a", "client-b"])
        held.hold = True
        publishing = asyncio.create_task(first.relay_once())
        await asyncio.wait_for(held.entered.wait(), 10)
        assert await second.relay_once() == 0  # the lock is held: standby
        held.release.set()
        assert await publishing == 2
        await stage_events(sessions, ["client-c"])
        assert await second.relay_once() == 1  # released with the deletion

        # A relay that dies holding the lock (its connection goes) does not block the others.
        await stage_events(sessions, ["client-d"])
        held.hold, held.entered, held.release = True, asyncio.Event(), asyncio.Event()
        publishing = asyncio.create_task(first.relay_once())
        await asyncio.wait_for(held.entered.wait(), 10)
        publishing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await publishing
        assert await second.relay_once() == 1
    finally:
        held.release.set()
        await first.close()
        await second.close()
    assert held.subjects() == ["client-a", "client-b"]
    assert await pending(sessions) == []


@pytest.mark.postgres
async def test_on_postgresql_the_relays_deletions_do_not_wait_for_the_wal_flush(
    postgres_sessions: SessionFactory,
) -> None:
    """The relay only deletes rows the bus already has: its connection commits asynchronously
    (``synchronous_commit = off``, its own); the services' connections keep the server's
    setting."""
    sessions = postgres_sessions
    engine = sessions.kw["bind"]
    # The test servers run with synchronous_commit off; production runs with it on.
    async with engine.begin() as connection:
        name = connection.engine.url.database
        await connection.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    await engine.dispose()  # new connections take the database's setting
    relay = relay_for(sessions, RecordingBus())
    try:
        await stage_events(sessions, ["client-a"])
        assert await relay.relay_once() == 1
        relay_connection = relay._postgres._connection  # type: ignore[union-attr]
        assert relay_connection is not None
        assert await relay_connection.fetchval("SHOW synchronous_commit") == "off"
        async with engine.connect() as connection:
            setting = await connection.exec_driver_sql("SHOW synchronous_commit")
            assert setting.scalar() == "on"
    finally:
        await relay.close()
    assert await pending(sessions) == []


@pytest.mark.postgres
async def test_on_postgresql_the_relay_reconnects_after_losing_its_connection(
    postgres_sessions: SessionFactory,
) -> None:
    """A server restart or a killed backend: the relay opens its connection again (at the latest
    on the next pass, after one failed), and nothing is lost or published twice."""
    sessions = postgres_sessions
    bus = RecordingBus()
    relay = relay_for(sessions, bus)
    try:
        await stage_events(sessions, ["client-a"])
        assert await relay.relay_once() == 1
        async with sessions() as session:
            killed = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'ingest.outbox-relay'"
                )
            )
        assert killed == 1
        await stage_events(sessions, ["client-b"])
        published = []
        for _ in range(2):
            try:
                published.append(await relay.relay_once())
            except Exception:  # the lost connection, found by this pass (run logs it, backs off)
                published.append(-1)
            if published[-1] == 1:
                break
        assert published[-1] == 1, published
    finally:
        await relay.close()
    assert bus.subjects() == ["client-a", "client-b"]
    assert await pending(sessions) == []
