"""The PostgreSQL engine keeps a worker's statements prepared: a statement run again on a
connection is not parsed and planned again (each miss is one more round trip)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event as sa_event, text

from shared.db.engine import create_engine

pytestmark = pytest.mark.postgres

DISTINCT_STATEMENTS = 300  # more than asyncpg's and SQLAlchemy's default caches (100)


async def test_hundreds_of_distinct_statements_stay_prepared_on_a_connection(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            for _ in range(2):
                for n in range(DISTINCT_STATEMENTS):
                    assert (await connection.execute(text(f"SELECT {n} AS n"))).scalar() == n
            prepared = await connection.scalar(
                text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT %'")
            )
    finally:
        await engine.dispose()
    assert prepared is not None
    assert prepared >= DISTINCT_STATEMENTS


OPERATORS = 20  # requests at once: a call centre's operators polling one qualify API


async def test_a_burst_within_the_pool_reuses_its_connections(postgres_url: str) -> None:
    """Each PostgreSQL connection opened costs start-up, SCRAM authentication and statements
    prepared again: the default pool keeps what a call centre's burst of requests opened, so the
    next bursts open none (the former 10 + 10 overflow opened and closed one per request above
    10, and a saturated API spent more CPU opening connections the busier it was)."""
    engine = create_engine(postgres_url)
    opened: list[object] = []
    sa_event.listen(engine.sync_engine.pool, "connect", lambda *_: opened.append(object()))
    all_held = asyncio.Barrier(OPERATORS)  # cyclic: reused by each burst

    async def request() -> None:
        async with engine.connect() as connection:
            await all_held.wait()  # every request holds its connection at once
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1

    try:
        for _ in range(3):
            await asyncio.gather(*(request() for _ in range(OPERATORS)))
    finally:
        await engine.dispose()
    assert len(opened) == OPERATORS
