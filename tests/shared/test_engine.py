"""The PostgreSQL engine keeps a worker's statements prepared: a statement run again on a
connection is not parsed and planned again (each miss is one more round trip)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

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
