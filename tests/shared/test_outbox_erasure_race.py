"""The outbox relay and an erasure racing on the same subject (issue 11, item 1), driven step by
step: the relay reads a batch and is held inside ``publish_many``; meanwhile the erasure deletes
the subject's unpublished rows and stages its ``privacy.erasure-completed`` answer; then the
relay finishes. The answer must reach the bus exactly once, whatever the database.

On SQLite ``FOR UPDATE`` is a no-op and the relay's SELECT holds no snapshot, so the eraser runs
in the middle of the relay's batch; a rowid table then gives the answer the id just freed, and a
relay deleting ``WHERE id IN (…)`` removed it unpublished. On PostgreSQL the relay locks no rows
either (its read and its deletion are two statements in autocommit, ``shared.outbox_postgres``):
the eraser runs in the middle too, and sequences never reuse ids.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import MetaData, insert, select

from ingest.bootstrap import SERVICE as INGEST
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.session import SessionFactory
from shared.events import Envelope
from shared.events.privacy import ErasureRequestedV1, ExportProvidedV1
from shared.metrics import ServiceMetrics
from shared.outbox import OutboxRelay, event_row, event_source, stage
from shared.privacy import ERASURE_COMPLETED, EXPORT_PROVIDED, erasure_handler, lead_scoped_eraser
from shared.settings import ServiceSettings
from tests.support.harness import migrate, settings_for
from tests.support.recording_bus import HeldBus

OUTBOX = INGEST.infra.outbox_event
ERASED = INGEST.infra.erased_subject
CLIENT, LEAD = "client-race", "lead-race"


def ingest_settings(url: str) -> ServiceSettings:
    return settings_for("ingest", database_url=url, bus="embedded")


def relay_for(sessions: SessionFactory, bus: HeldBus) -> OutboxRelay:
    return OutboxRelay(
        service="ingest",
        session_factory=sessions,
        table=OUTBOX,
        bus=bus,  # type: ignore[arg-type]  # only publish_many is used by the relay
        metrics=ServiceMetrics("ingest"),
    )


def erase_outbox_rows_and_answer() -> object:
    """The shared erasure handler with an eraser reaching only the outbox (as every service's
    eraser does: it deletes the subject's unpublished events)."""
    metadata = MetaData()
    return erasure_handler(
        service="ingest",
        outbox=OUTBOX,
        erased_subjects=ERASED,
        erase=lead_scoped_eraser(OUTBOX.to_metadata(metadata).metadata),
    )


async def stage_export_share(sessions: SessionFactory) -> None:
    share = ExportProvidedV1(
        request_id="export-1",
        client_id=CLIENT,
        service="ingest",
        data={"lead": [{"id": LEAD}]},
        provided_at=datetime.now(UTC),
    )
    async with session_scope(sessions) as session:
        await stage(
            session,
            OUTBOX,
            source=event_source("ingest"),
            event_type=EXPORT_PROVIDED,
            subject=CLIENT,
            payload=share,
        )


def erasure_request() -> Envelope:
    request = ErasureRequestedV1(
        request_id="erasure-1",
        client_id=CLIENT,
        lead_ids=[LEAD],
        requested_at=datetime.now(UTC),
    )
    return Envelope(
        source=event_source("crm"),
        type="privacy.erasure-requested.v1",
        subject=CLIENT,
        data=request.model_dump(mode="json"),
    )


async def outbox_rows(sessions: SessionFactory) -> list[tuple[int, str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(OUTBOX.c.id, OUTBOX.c.event_id, OUTBOX.c.event_type).order_by(OUTBOX.c.id)
        )
        return [(row.id, row.event_id, row.event_type) for row in rows]


async def test_an_erasure_answer_staged_during_a_relay_batch_is_published(
    ingest_database: str,
) -> None:
    engine = create_engine(ingest_database)
    sessions = make_session_factory(engine)
    bus = HeldBus()
    relay = relay_for(sessions, bus)
    handler = erase_outbox_rows_and_answer()
    try:
        await stage_export_share(sessions)
        batch = await outbox_rows(sessions)
        assert [kind for *_, kind in batch] == [EXPORT_PROVIDED]

        bus.hold = True
        relaying = asyncio.create_task(relay.relay_once())
        await asyncio.wait_for(bus.entered.wait(), 10)  # the relay holds its batch

        async def erase() -> None:
            async with session_scope(sessions) as session:
                await handler(session, erasure_request())  # type: ignore[operator]

        erasing = asyncio.create_task(erase())
        # No row lock on either database: the eraser runs inside the relay's batch.
        await asyncio.wait_for(erasing, 10)
        staged = await outbox_rows(sessions)
        assert [kind for *_, kind in staged] == [ERASURE_COMPLETED]
        # The cause, shown: a new row never takes an id a reader may still hold.
        assert staged[0][0] > batch[-1][0]

        bus.release.set()
        assert await relaying == 1
        await erasing

        bus.hold = False
        while await outbox_rows(sessions):
            await relay.relay_once()
        assert bus.types() == [EXPORT_PROVIDED, ERASURE_COMPLETED]
    finally:
        bus.release.set()
        await relay.close()
        await engine.dispose()


async def test_the_relay_deletes_only_the_rows_it_published(tmp_path: Path) -> None:
    """Even if an id came back (a database from before the AUTOINCREMENT migration, a manual
    repair), a row the relay did not publish is never deleted by it: it deletes by id and
    event id."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"
    await migrate(ingest_settings(url))
    engine = create_engine(url)
    sessions = make_session_factory(engine)
    bus = HeldBus()
    relay = relay_for(sessions, bus)
    try:
        await stage_export_share(sessions)
        [(held_id, held_event_id, _)] = await outbox_rows(sessions)
        bus.hold = True
        relaying = asyncio.create_task(relay.relay_once())
        await asyncio.wait_for(bus.entered.wait(), 10)

        # Meanwhile the held row goes, and another event is written under the same id.
        row = event_row(
            source=event_source("ingest"),
            event_type=EXPORT_PROVIDED,
            subject=CLIENT,
            payload=ExportProvidedV1(
                request_id="export-2",
                client_id=CLIENT,
                service="ingest",
                data={},
                provided_at=datetime.now(UTC),
            ),
        )
        async with session_scope(sessions) as session:
            await session.execute(OUTBOX.delete().where(OUTBOX.c.id == held_id))
            await session.execute(insert(OUTBOX).values(id=held_id, **row))
        bus.release.set()
        assert await relaying == 1

        remaining = await outbox_rows(sessions)
        assert remaining == [(held_id, row["event_id"], EXPORT_PROVIDED)]
        assert row["event_id"] != held_event_id
    finally:
        bus.release.set()
        await relay.close()
        await engine.dispose()
