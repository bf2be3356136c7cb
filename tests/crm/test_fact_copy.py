"""The API's columnar copy of the SLA facts (crm/sla/fact_copy/, columnar_summary.py) gives
the summary the database's own aggregates give (``stage_summaries_postgres``), on random facts,
by every grouping and filter, and follows the table: new and changed rows, rows written by a
transaction still open at a refresh, deletions."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.models import metadata
from crm.settings import CrmSettings
from crm.sla import service
from crm.sla.columnar_summary import NotExact, summary_rows
from crm.sla.fact_copy.copy import SlaFactCopy
from crm.sla.models import sla_fact
from crm.sla.repository import GROUP_COLUMNS, Filters, SlaRepository
from crm.sla.stages import MILESTONES, STAGES, build_policy, milestone_column
from shared.business_time import BusinessCalendar
from shared.db import create_engine, make_session_factory, session_scope
from tests.support.harness import migrate

pytestmark = pytest.mark.postgres

START = datetime(2026, 3, 1, tzinfo=UTC)
NOW = START + timedelta(days=20)
TARGETS_S = {"first_attempt": 900, "accepted": 600, "seller_contact": 3600}
assert metadata is sla_fact.metadata


def fact(generator: random.Random, number: int) -> dict[str, Any]:
    """A random row: dimensions often missing, durations from 0 s to days (ties on purpose),
    milestones, deadlines around NOW, outcomes and prices."""
    pick = generator.choice

    def maybe(values: list[Any], none: float = 0.2) -> Any:
        return None if generator.random() < none else pick(values)

    received = START + timedelta(seconds=generator.randrange(0, 30 * 86400))
    row: dict[str, Any] = {
        "lead_id": f"lead-{number:06d}",
        "source": maybe(["leboncoin", "lacentrale", "facebook", "email"], 0.05),
        "site": maybe([f"site-{n}" for n in range(7)]),
        "seller_id": maybe([f"seller-{n}" for n in range(40)], 0.4),
        "operator_id": maybe([f"op-{n}" for n in range(12)], 0.3),
        "path": maybe(["qualify", "direct"]),
        "channel": maybe(["in_store", "full_web"]),
        "calendar_provisional": False,
        "updated_at": NOW,
        "received_at": received,
    }
    for milestone in MILESTONES:
        if milestone != "received" and generator.random() < 0.5:
            row[milestone_column(milestone)] = received + timedelta(
                minutes=generator.randrange(1, 9000)
            )
    if generator.random() < 0.3:
        row["closed_at"] = received + timedelta(days=2)
        row["outcome"] = pick(["won", "lost", "disqualified"])
        if row["outcome"] == "won" and generator.random() < 0.7:
            row["sale_price_eur"] = generator.randrange(3000, 40000)
    for stage in STAGES:
        if generator.random() < 0.6:
            business = pick([0, 1, 59, 60, 61, 900, 901, generator.randrange(0, 400_000)])
            row[stage.business_column] = business
            row[stage.wall_column] = business * pick([1, 2, 3])
        if stage.name in TARGETS_S and generator.random() < 0.7:
            due = NOW + timedelta(minutes=generator.randrange(-600, 600))
            row[stage.due_column] = due
            row[stage.risk_column] = due - timedelta(minutes=generator.choice([0, 3, 30, 300]))
    return row


@pytest.fixture
async def engine(postgres_url: str, tmp_path: Any) -> AsyncIterator[AsyncEngine]:
    await migrate(CrmSettings(database_url=postgres_url, embedded_bus_path=tmp_path / "bus.db"))
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


async def write(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    columns = [column.name for column in sla_fact.columns]
    async with engine.begin() as connection:
        await connection.execute(
            insert(sla_fact), [{name: row.get(name) for name in columns} for row in rows]
        )


FILTERS: list[dict[str, str]] = [
    {},
    {"source": "leboncoin"},
    {"seller": "seller-3"},
    {"site": "site-2", "path": "direct"},
    {"operator": "nobody"},  # a value no fact has: no group
]


async def assert_same(engine: AsyncEngine, copy: SlaFactCopy) -> None:
    sessions = make_session_factory(engine)
    ranges = [
        (START, START + timedelta(days=31)),
        (START + timedelta(days=9), START + timedelta(days=17)),
    ]
    for start, end in ranges:
        for dimensions in FILTERS:
            for group_by in [None, *GROUP_COLUMNS]:
                filters = Filters(start=start, end=end, **dimensions)
                async with session_scope(sessions) as session:
                    wanted = await SlaRepository.from_session(session).stage_summaries_postgres(
                        filters, group_by, TARGETS_S, NOW
                    )
                got = await copy.read(
                    partial(
                        summary_rows,
                        filters=filters,
                        group_by=group_by,
                        targets_s=TARGETS_S,
                        now=NOW,
                    )
                )
                assert set(got) == set(wanted), (dimensions, group_by)
                for key, row in wanted.items():
                    expected = {name: value for name, value in row.items() if name != "g"}
                    expected = {
                        name: (list(value) if isinstance(value, list) else value)
                        for name, value in expected.items()
                    }
                    assert got[key] == expected, (dimensions, group_by, key)


async def seeded(engine: AsyncEngine, seed: int, count: int) -> tuple[random.Random, SlaFactCopy]:
    """``count`` random facts written, a copy not loaded yet, and the generator to make more."""
    generator = random.Random(seed)
    await write(engine, [fact(generator, number) for number in range(count)])
    return generator, SlaFactCopy(engine, TARGETS_S)


async def test_the_copy_gives_the_database_figures_and_follows_the_table(
    engine: AsyncEngine,
) -> None:
    generator, copy = await seeded(engine, 12, 1500)
    await assert_same(engine, copy)
    assert copy.loads == 1
    assert copy.rows_read == 1500

    # New rows, rows changed (durations, new dimension values, closings): read alone.
    await write(engine, [fact(generator, number) for number in range(1500, 1600)])
    async with engine.begin() as connection:
        await connection.execute(
            update(sla_fact)
            .where(sla_fact.c.lead_id < "lead-000050")
            .values(
                seller_id="seller-new",
                site="site-new",
                first_attempt_business_s=77,
                closed_at=NOW,
            )
        )
    await assert_same(engine, copy)
    assert copy.loads == 1
    assert copy.rows_read == 1500 + 150

    # Nothing changed: nothing read.
    await assert_same(engine, copy)
    assert copy.rows_read == 1650

    # Deleted by hand: the copy loads again.
    async with engine.begin() as connection:
        await connection.execute(delete(sla_fact).where(sla_fact.c.lead_id >= "lead-001200"))
    await assert_same(engine, copy)
    assert copy.loads == 2
    assert copy.rows_read == 1650 + 1200


async def test_a_row_written_by_a_transaction_open_at_a_refresh_is_read_once_committed(
    engine: AsyncEngine,
) -> None:
    generator, copy = await seeded(engine, 3, 20)
    filters = Filters(start=START, end=START + timedelta(days=31))

    def leads(columns: Any) -> int:
        return sum(
            row["leads"] for row in summary_rows(columns, filters, None, TARGETS_S, NOW).values()
        )

    assert await copy.read(leads) == 20
    async with engine.connect() as writer:
        transaction = await writer.begin()
        await writer.execute(insert(sla_fact), [dict(fact(generator, 20), received_at=START)])
        await writer.execute(  # its number is older than the next refresh's snapshot
            update(sla_fact).where(sla_fact.c.lead_id == "lead-000001").values(site="site-late")
        )
        assert await copy.read(leads) == 20  # not committed: not seen
        # A later transaction commits first: a copy that only read past the newest transaction
        # it had seen would skip the open one for good.
        await write(engine, [dict(fact(generator, 21), received_at=START)])
        assert await copy.read(leads) == 21
        await transaction.commit()
    assert await copy.read(leads) == 22

    def sites(columns: Any) -> set[str | None]:
        return set(summary_rows(columns, filters, "site", TARGETS_S, NOW))

    assert "site-late" in await copy.read(sites)


async def test_a_negative_duration_sends_the_summary_to_the_database(engine: AsyncEngine) -> None:
    """The worker never writes one (a stage is measured from its start); written by hand, the
    copy's minute keys could not hold it, so the service asks the database instead."""
    generator = random.Random(5)
    rows = [fact(generator, number) for number in range(200)]
    rows[7][STAGES[0].business_column] = -200
    await write(engine, rows)
    copy = SlaFactCopy(engine, TARGETS_S)
    filters = Filters(start=START, end=START + timedelta(days=31))
    with pytest.raises(NotExact):
        await copy.read(lambda columns: summary_rows(columns, filters, None, TARGETS_S, NOW))
    policy = build_policy(
        call_centre=BusinessCalendar.from_spec("mon-sun 00:00-24:00"),
        targets_minutes={name: seconds / 60 for name, seconds in TARGETS_S.items()},
        at_risk_ratio=0.8,
    )
    sessions = make_session_factory(engine)
    async with session_scope(sessions) as session:
        repository = SlaRepository.from_session(session)
        with_copy = await service.summary(repository, policy, filters, "site", NOW, copy)
        without = await service.summary(repository, policy, filters, "site", NOW)
    assert with_copy == without
    assert with_copy[0].stages[0].p50_minutes is not None
