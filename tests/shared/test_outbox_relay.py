"""The outbox relay on both databases: it publishes in staging order, batch after batch, deletes
exactly what the bus stored, and keeps (and counts the attempt on) what the bus refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select

from ingest.bootstrap import SERVICE as INGEST
from shared.bus.protocol import BusUnavailable
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.session import SessionFactory
from shared.events.envelope import Headers
from shared.events.privacy import ExportProvidedV1
from shared.metrics import ServiceMetrics
from shared.outbox import OutboxRelay, event_source, stage
from tests.support.harness import migrate, settings_for
from tests.support.infra import create_database, drop_database

OUTBOX = INGEST.infra.outbox_event
Published = tuple[str, bytes | None, bytes, Headers]


class RecordingBus:
    """Stores what it is given; refuses the next ``refuse`` calls as a broker outage would."""

    def __init__(self, refuse: int = 0) -> None:
        self.published: list[Published] = []
        self.refuse = refuse

    async def publish_many(self, records: Sequence[Published]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise BusUnavailable("broker down")
        self.published.extend(records)

    def subjects(self) -> list[str]:
        return [dict(headers)["ce_subject"].decode() for *_, headers in self.published]


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


@pytest.mark.postgres
async def test_on_postgresql_a_batch_goes_out_in_one_statement() -> None:
    url = await create_database()
    await migrate(settings_for("ingest", database_url=url, bus="embedded"))
    engine = create_engine(url)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    try:
        sessions = make_session_factory(engine)
        await stage_events(sessions, ["client-a", "client-b"])
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        assert await relay_for(sessions, RecordingBus()).relay_once() == 2
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert len(statements) == 1, statements  # the locked read and the deletion together
        assert statements[0].lstrip().upper().startswith("DELETE")
        assert await pending(sessions) == []
    finally:
        await engine.dispose()
        await drop_database(url)


@pytest.mark.postgres
async def test_on_postgresql_the_relays_commit_does_not_wait_for_the_wal_flush() -> None:
    """The relay only deletes rows the bus already has: its transaction commits asynchronously
    (``synchronous_commit = off``, local to it); the services' other transactions keep the
    server's setting."""
    url = await create_database()
    await migrate(settings_for("ingest", database_url=url, bus="embedded"))
    engine = create_engine(url)
    # The test servers run with synchronous_commit off; production runs with it on.
    async with engine.begin() as connection:
        name = connection.engine.url.database
        await connection.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    await engine.dispose()  # new connections take the database's setting
    seen: list[str] = []

    def setting_after(connection: Any, *_args: object) -> None:
        cursor = connection.connection.dbapi_connection.cursor()
        cursor.execute("SHOW synchronous_commit")
        seen.append(cursor.fetchone()[0])
        cursor.close()

    try:
        sessions = make_session_factory(engine)
        await stage_events(sessions, ["client-a"])
        event.listen(engine.sync_engine, "after_cursor_execute", setting_after)
        try:
            assert await relay_for(sessions, RecordingBus()).relay_once() == 1
            await stage_events(sessions, ["client-b"])  # an ordinary transaction
        finally:
            event.remove(engine.sync_engine, "after_cursor_execute", setting_after)
        assert seen[0] == "off"  # inside the relay's transaction, after its one statement
        assert len(seen) > 1
        assert set(seen[1:]) == {"on"}
        assert await pending(sessions) == [("client-b", 0, None)]
    finally:
        await engine.dispose()
        await drop_database(url)
