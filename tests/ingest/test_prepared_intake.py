"""PostgreSQL: the JSON intake's batch statement goes to the driver as SQL compiled once with
positional arguments (``shared.db.prepared``), prepared once per connection by the driver and
executed on it, on a connection the group commit holds between batches: a lead pays neither
SQLAlchemy's compilation, parameter building and execution layer nor a pool checkout and an ORM
session's begin and commit. The answers and effects stay (here and in ``test_group_commit``),
and so do the errors: SQLAlchemy's, and a connection the server dropped is discarded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ingest.leads import service
from ingest.leads.group_commit import LeadGroupCommit
from ingest.leads.repository import LeadBatchWriter, _accept_new_postgres, _accept_new_prepared
from ingest.leads.schemas import LeadIn
from ingest.models import Lead, infra
from shared.db.engine import create_engine
from shared.outage import is_outage
from tests.ingest.conftest import IngestFactory, outbox_count
from tests.support.clock import TUESDAY_11H
from tests.support.executed import executed
from tests.support.harness import migrate, settings_for

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Driven:
    """A statement the driver ran, from a statement it prepared."""

    sql: str
    arguments: tuple[Any, ...]


@contextmanager
def traffic(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[list[Driven], list[object], list[str]]]:
    """The driver's executions of prepared statements, the pool checkouts and the statements
    sent through SQLAlchemy while the block runs."""
    driven: list[Driven] = []
    checkouts: list[object] = []
    fetch = PreparedStatement.fetch

    async def recording_fetch(self: PreparedStatement, *args: Any, **kwargs: Any) -> Any:
        driven.append(Driven(self.get_query(), args))
        return await fetch(self, *args, **kwargs)

    def checkout(*args: Any) -> None:
        checkouts.append(args[0])

    monkeypatch.setattr(PreparedStatement, "fetch", recording_fetch)
    pool = engine.sync_engine.pool
    with executed(engine) as through_sqlalchemy:
        event.listen(pool, "checkout", checkout)
        try:
            yield driven, checkouts, through_sqlalchemy
        finally:
            event.remove(pool, "checkout", checkout)


def _row(source_ref: str) -> dict[str, Any]:
    lead = LeadIn.model_validate(
        {
            "source": "api",
            "source_ref": source_ref,
            "contact": {"first_name": "Camille", "phone": "06 12 34 56 78"},
            "vehicle": {"make": "Renault", "model": "Clio"},
        }
    )
    return service.api_lead_row(lead, now=TUESDAY_11H)


async def test_each_batch_is_one_prepared_statement_on_a_held_connection(
    ingest_service: IngestFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ingest_service(database_url=postgres_url) as svc:
        runtime = svc.app.state.runtime
        writer = runtime.component(LeadGroupCommit)
        first = await writer.accept(_row("lead-0"))  # opens the connection, prepares
        prepared = _accept_new_prepared(infra.outbox_event, runtime.engine.dialect)
        with traffic(runtime.engine, monkeypatch) as (driven, checkouts, through_sqlalchemy):
            answers = [await writer.accept(_row(f"lead-{index}")) for index in range(1, 6)]
            together = await asyncio.gather(*(writer.accept(_row(f"x-{i}")) for i in range(4)))
        assert not any(answer.duplicate for answer in [*answers, *together])
        assert len({answer.lead_id for answer in [first, *answers, *together]}) == 10
        assert len(driven) == 6  # one statement a batch (5 lone leads, then 4 together)
        assert all(item.sql == prepared.sql for item in driven)  # compiled once, prepared once
        assert all(len(item.arguments) == 2 for item in driven)  # the two JSON documents
        assert through_sqlalchemy == []  # nor compiled nor executed by SQLAlchemy per batch
        assert checkouts == []  # the connection of the first batch, held
        # A replay gets the first lead's id, and stages nothing.
        assert await writer.accept(_row("lead-0")) == service.Acceptance(
            first.lead_id, duplicate=True
        )
        async with runtime.session_factory() as session:
            leads = await session.scalar(select(func.count()).select_from(Lead))
        assert leads == 10
        assert await outbox_count(svc) == 10


async def test_the_held_connection_goes_back_to_the_pool_in_time(
    ingest_service: IngestFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held no longer than ``HOLD_S`` (so the pool's recycling applies), and given back at
    shutdown: nothing left checked out."""
    monkeypatch.setattr(LeadBatchWriter, "HOLD_S", 0.0)
    async with ingest_service(database_url=postgres_url) as svc:
        runtime = svc.app.state.runtime
        writer = runtime.component(LeadGroupCommit)
        with traffic(runtime.engine, monkeypatch) as (driven, checkouts, _):
            for index in range(3):
                assert not (await writer.accept(_row(f"held-{index}"))).duplicate
        assert len(checkouts) == 3
        assert len(driven) == 3
        await writer.close()
        assert runtime.engine.sync_engine.pool.checkedout() == 0
        assert await outbox_count(svc) == 3


def test_the_prepared_statement_is_the_batch_statement() -> None:
    dialect = create_async_engine("postgresql+asyncpg://ingest@localhost/none").dialect
    prepared = _accept_new_prepared(infra.outbox_event, dialect)
    compiled = _accept_new_postgres(infra.outbox_event).compile(dialect=dialect)
    assert prepared.sql == compiled.string
    assert prepared.names == ("leads", "events")


async def test_a_refused_batch_raises_what_sqlalchemy_raises(postgres_url: str) -> None:
    """The driver's error as SQLAlchemy's execution raised it: the matching ``DBAPIError``, its
    parameters hidden, the driver's error at the end of its causes; the held connection goes
    back to the pool and the next batch takes one."""
    engine = await create_engine_for(postgres_url)
    try:
        writer = LeadBatchWriter(engine, infra.outbox_event)
        row = _row("twice")
        event = service.event_row(row, source="ingest")
        assert await writer.accept_new([row], [event]) == {row["id"]}
        # The same lead id again under another source ref: the primary key refuses it.
        clash = {**row, "source_ref": "other"}
        with pytest.raises(IntegrityError) as refused:
            await writer.accept_new([clash], [{**event, "event_id": "another"}])
        assert "Camille" not in str(refused.value)  # the engine hides parameters
        assert refused.value.orig is not None
        assert isinstance(refused.value.orig.__cause__, Exception)
        assert type(refused.value.orig.__cause__).__module__.startswith("asyncpg")
        assert not is_outage(refused.value)
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        fresh = _row("after")
        assert await writer.accept_new([fresh], [service.event_row(fresh, source="ingest")]) == {
            fresh["id"]
        }
        await writer.close()
    finally:
        await engine.dispose()


async def test_a_connection_the_server_dropped_is_an_outage_and_is_discarded(
    postgres_url: str,
) -> None:
    engine = await create_engine_for(postgres_url)
    try:
        writer = LeadBatchWriter(engine, infra.outbox_event)
        first = _row("before")
        await writer.accept_new([first], [service.event_row(first, source="ingest")])
        held = writer._connection
        assert held is not None
        pid = (await held.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.2)  # the server's goodbye reaches the driver
        lost = _row("lost")
        with pytest.raises(DBAPIError) as dropped:
            await writer.accept_new([lost], [service.event_row(lost, source="ingest")])
        assert is_outage(dropped.value)
        assert dropped.value.connection_invalidated  # as SQLAlchemy marks it
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        again = _row("again")
        assert await writer.accept_new([again], [service.event_row(again, source="ingest")]) == {
            again["id"]
        }
        await writer.close()
    finally:
        await engine.dispose()


async def create_engine_for(url: str) -> AsyncEngine:
    """An engine on ingest's migrated database."""
    await migrate(settings_for("ingest", database_url=url))
    return create_engine(url)
