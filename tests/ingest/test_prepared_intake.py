"""PostgreSQL: the JSON intake's batch statement goes to the driver as SQL compiled once with
positional arguments (``shared.db.prepared``), on a connection the group commit holds between
batches: a lead pays neither SQLAlchemy's compilation and parameter building nor a pool
checkout and an ORM session's begin and commit. The answers and effects stay (here and in
``test_group_commit``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ingest.leads import service
from ingest.leads.group_commit import LeadGroupCommit
from ingest.leads.repository import LeadBatchWriter, _accept_new_postgres, _accept_new_prepared
from ingest.leads.schemas import LeadIn
from ingest.models import Lead, infra
from tests.ingest.conftest import IngestFactory, outbox_count
from tests.support.clock import TUESDAY_11H
from tests.support.executed import Sent, sent

pytestmark = pytest.mark.postgres


@contextmanager
def traffic(engine: AsyncEngine) -> Iterator[tuple[list[Sent], list[object]]]:
    """The statements ``engine`` sends and the pool checkouts made while the block runs."""
    checkouts: list[object] = []

    def checkout(*args: Any) -> None:
        checkouts.append(args[0])

    pool = engine.sync_engine.pool
    with sent(engine) as statements:
        event.listen(pool, "checkout", checkout)
        try:
            yield statements, checkouts
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
    ingest_service: IngestFactory, postgres_url: str
) -> None:
    async with ingest_service(database_url=postgres_url) as svc:
        runtime = svc.app.state.runtime
        writer = runtime.component(LeadGroupCommit)
        first = await writer.accept(_row("lead-0"))  # opens the connection
        with traffic(runtime.engine) as (sent, checkouts):
            answers = [await writer.accept(_row(f"lead-{index}")) for index in range(1, 6)]
            together = await asyncio.gather(*(writer.accept(_row(f"x-{i}")) for i in range(4)))
        assert not any(answer.duplicate for answer in [*answers, *together])
        assert len({answer.lead_id for answer in [first, *answers, *together]}) == 10
        assert len(sent) == 6  # one statement a batch (5 lone leads, then 4 together)
        assert all("INSERT INTO lead" in item.sql for item in sent)
        assert not any(item.compiled for item in sent)  # compiled once, before the first batch
        assert all(isinstance(item.parameters, tuple) for item in sent)
        assert all(len(item.parameters) == 2 for item in sent)  # the two JSON documents
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
        with traffic(runtime.engine) as (sent, checkouts):
            for index in range(3):
                assert not (await writer.accept(_row(f"held-{index}"))).duplicate
        assert len(checkouts) == 3
        assert len(sent) == 3
        await writer.close()
        assert runtime.engine.sync_engine.pool.checkedout() == 0
        assert await outbox_count(svc) == 3


def test_the_prepared_statement_is_the_batch_statement() -> None:
    dialect = create_async_engine("postgresql+asyncpg://ingest@localhost/none").dialect
    prepared = _accept_new_prepared(infra.outbox_event, dialect)
    compiled = _accept_new_postgres(infra.outbox_event).compile(dialect=dialect)
    assert prepared.sql == compiled.string
    assert prepared.names == ("leads", "events")
