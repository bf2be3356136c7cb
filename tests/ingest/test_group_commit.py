"""Group commit of JSON leads: concurrent requests share transactions, yet each gets its own
answer; a replay inside a batch is a duplicate of the lead it replays; a bad row fails only its
own request; a caller that goes away does not lose the lead."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Text, cast, func, select
from sqlalchemy.exc import DBAPIError

from ingest.leads import group_commit, service
from ingest.leads.schemas import LeadIn
from ingest.models import Lead, infra
from shared.db import create_engine, make_session_factory
from shared.db.session import session_scope
from shared.events import Topics
from shared.events.envelope import Envelope
from shared.outbox import Outbox, event_source
from tests.ingest.conftest import IngestFactory, outbox_count
from tests.support.clock import TUESDAY_11H
from tests.support.harness import migrate, settings_for


def _lead(source_ref: str) -> dict[str, Any]:
    return {
        "source": "api",
        "source_ref": source_ref,
        "contact": {"first_name": "Camille", "phone": "06 12 34 56 78"},
    }


def _row(source_ref: str, **overrides: Any) -> dict[str, Any]:
    draft = service.draft_from_api(LeadIn.model_validate(_lead(source_ref)))
    return {**service.lead_row(draft, now=TUESDAY_11H), **overrides}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of the database the service runs on: SQLite (two statements a batch) or
    PostgreSQL (one statement a batch, outside any transaction)."""
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("postgres_url")}
    return {}


async def test_concurrent_posts_share_batches_and_replays_get_the_first_id(
    ingest_service: IngestFactory, monkeypatch: pytest.MonkeyPatch, database: dict[str, str]
) -> None:
    sizes: list[int] = []
    write = group_commit.LeadGroupCommit._write

    async def recording_write(
        self: group_commit.LeadGroupCommit, batch: Sequence[Any]
    ) -> list[service.Acceptance]:
        sizes.append(len(batch))
        return await write(self, batch)

    monkeypatch.setattr(group_commit.LeadGroupCommit, "_write", recording_write)
    async with ingest_service(**database) as svc:
        refs = [f"distinct-{index}" for index in range(40)] + ["same"] * 20
        answers = await asyncio.gather(
            *(svc.client.post("/v1/leads", json=_lead(ref)) for ref in refs)
        )
        assert {answer.status_code for answer in answers} == {202}
        bodies = [answer.json() for answer in answers]
        distinct, same = bodies[:40], bodies[40:]
        assert {body["status"] for body in distinct} == {"accepted"}
        assert len({body["id"] for body in distinct}) == 40
        assert sorted(body["status"] for body in same) == ["accepted"] + ["duplicate"] * 19
        assert len({body["id"] for body in same}) == 1
        # One event per lead, none for the replays.
        assert await outbox_count(svc) == 41
        async with svc.app.state.runtime.session_factory() as session:
            subjects = list(await session.scalars(select(infra.outbox_event.c.subject)))
        assert sorted(subjects) == sorted({body["id"] for body in bodies})
    assert max(sizes) > 1, "concurrent requests should have shared a transaction"
    assert sum(sizes) == 60


@pytest.mark.postgres
async def test_a_bad_row_fails_only_its_own_request(postgres_url: str, tmp_path: Path) -> None:
    settings = settings_for("ingest", database_url=postgres_url)
    await migrate(settings)
    engine = create_engine(postgres_url)
    try:
        outbox = Outbox(infra.outbox_event, event_source("ingest"))
        writer = group_commit.LeadGroupCommit(make_session_factory(engine), outbox)
        good = [_row(f"good-{index}") for index in range(3)]
        # Over the column's 100 characters (a valid event, a row PostgreSQL refuses).
        bad = _row("bad", first_name="C" * 150)
        results = await asyncio.gather(
            *(writer.accept(row) for row in [good[0], bad, *good[1:]]),
            return_exceptions=True,
        )
        assert isinstance(results[1], DBAPIError)
        accepted = [result for index, result in enumerate(results) if index != 1]
        assert all(isinstance(result, service.Acceptance) for result in accepted)
        async with engine.connect() as connection:
            stored = set(await connection.scalars(select(Lead.source_ref)))
            events = await connection.scalar(select(func.count()).select_from(infra.outbox_event))
        assert stored == {"good-0", "good-1", "good-2"}
        assert events == 3
        await writer.close()  # gives its held connection back (PostgreSQL)
    finally:
        await engine.dispose()


async def test_a_caller_that_goes_away_does_not_lose_its_lead(
    ingest_service: IngestFactory,
) -> None:
    async with ingest_service() as svc:
        writer = svc.app.state.runtime.component(group_commit.LeadGroupCommit)
        first = asyncio.create_task(writer.accept(_row("left-early")))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        # The app stops at once: shutdown waits for the batch in flight.
        url = svc.settings.resolved_database_url()
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            stored = set(await connection.scalars(select(Lead.source_ref)))
            events = await connection.scalar(select(func.count()).select_from(infra.outbox_event))
    finally:
        await engine.dispose()
    assert stored == {"left-early"}
    assert events == 1


async def test_a_replay_of_a_lead_stored_earlier_gets_its_id(
    ingest_service: IngestFactory, database: dict[str, str]
) -> None:
    async with ingest_service(**database) as svc:
        writer = svc.app.state.runtime.component(group_commit.LeadGroupCommit)
        first = await writer.accept(_row("stored-earlier"))
        again = await asyncio.gather(*(writer.accept(_row(ref)) for ref in ["stored-earlier", "x"]))
        assert first == service.Acceptance(first.lead_id, duplicate=False)
        assert again[0] == service.Acceptance(first.lead_id, duplicate=True)
        assert not again[1].duplicate
        assert await outbox_count(svc) == 2


@pytest.mark.postgres
async def test_a_batch_stores_what_a_lone_insert_stores(postgres_url: str) -> None:
    """PostgreSQL: the batch statement (columns as arrays) stores the very values the
    SQLAlchemy insert of ``accept_draft`` stores: JSON columns (``None`` as JSON null), the
    flag, the instants; and the event it stages is the one ``event_row`` built."""
    settings = settings_for("ingest", database_url=postgres_url)
    await migrate(settings)
    engine = create_engine(postgres_url)
    try:
        outbox = Outbox(infra.outbox_event, event_source("ingest"))
        sessions = make_session_factory(engine)
        writer = group_commit.LeadGroupCommit(sessions, outbox)
        received = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
        lead = {
            **_lead("batched"),
            "received_at": received.isoformat(),
            "vehicle": {"make": "Renault", "model": "Clio", "price_eur": 12990},
            "message": "Bonjour",
        }
        draft = service.draft_from_api(LeadIn.model_validate(lead))
        batched = service.lead_row(draft, now=TUESDAY_11H)
        accepted = await writer.accept(batched)
        await writer.close()
        alone = service.draft_from_api(LeadIn.model_validate({**lead, "source_ref": "alone"}))
        async with session_scope(sessions) as session:
            single = await service.accept_draft(session, alone, outbox=outbox, now=TUESDAY_11H)
        async with engine.connect() as connection:
            rows = {
                row.source_ref: row._asdict()
                for row in await connection.execute(
                    select(
                        *(
                            cast(column, Text) if isinstance(column.type, JSON) else column
                            for column in Lead.__table__.columns
                        )
                    )
                )
            }
            event = (
                await connection.execute(
                    select(infra.outbox_event).where(
                        infra.outbox_event.c.subject == accepted.lead_id
                    )
                )
            ).one()
        assert accepted == service.Acceptance(batched["id"], duplicate=False)
        assert rows["batched"].pop("id") == accepted.lead_id
        assert rows["alone"].pop("id") == single.lead_id
        assert rows["batched"] == {**rows["alone"], "source_ref": "batched"}
        assert rows["batched"]["consents"] == "null"  # JSON null, as SQLAlchemy stores None
        assert rows["batched"]["received_at"] == received
        envelope = Envelope.from_message(
            event.value, [(name, value.encode()) for name, value in event.headers]
        )
        assert (envelope.id, envelope.type, envelope.subject) == (
            event.event_id,
            service.LEAD_RECEIVED,
            accepted.lead_id,
        )
        assert envelope.data == service.lead_received(batched).model_dump(mode="json")
        assert (event.event_type, event.topic, event.key) == (
            service.LEAD_RECEIVED,
            Topics.LEADS,
            accepted.lead_id.encode(),
        )
        assert (event.attempts, event.last_error) == (0, None)
        assert event.created_at.tzinfo is not None
    finally:
        await engine.dispose()
