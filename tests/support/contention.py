"""Real PostgreSQL contention for tests: two transactions that lock two rows in opposite order
(one is chosen as the deadlock victim, SQLSTATE 40P01), and a REPEATABLE READ transaction that
updates a row another committed meanwhile (serialization failure, 40001)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import create_engine

TABLE = "contention_probe"
_BUMP = text(f"UPDATE {TABLE} SET v = v + 1 WHERE id = :id")


async def create_rows(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, v INTEGER)")
        )
        await connection.execute(
            text(f"INSERT INTO {TABLE} VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING")
        )


async def lock_in_turn(
    connection: AsyncConnection, first: int, second: int, barrier: asyncio.Barrier
) -> None:
    """Lock ``first``, wait until the other transaction holds its first row, lock ``second``."""
    await connection.execute(_BUMP, {"id": first})
    await barrier.wait()
    await connection.execute(_BUMP, {"id": second})


async def deadlock(url: str) -> DBAPIError:
    """The error of the transaction PostgreSQL chose as the victim of a real deadlock."""
    engine = create_engine(url)
    try:
        await create_rows(engine)
        barrier = asyncio.Barrier(2)

        async def transaction(first: int, second: int) -> None:
            async with engine.begin() as connection:
                await lock_in_turn(connection, first, second, barrier)

        results = await asyncio.gather(transaction(1, 2), transaction(2, 1), return_exceptions=True)
    finally:
        await engine.dispose()
    errors = [result for result in results if isinstance(result, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], DBAPIError), errors[0]
    return errors[0]


async def serialization_failure(url: str) -> DBAPIError:
    """The error of a REPEATABLE READ transaction updating a row changed since its snapshot."""
    engine = create_engine(url)
    try:
        await create_rows(engine)
        async with engine.connect() as reader:
            await reader.execution_options(isolation_level="REPEATABLE READ")
            transaction = await reader.begin()
            try:
                await reader.execute(text(f"SELECT v FROM {TABLE} WHERE id = 1"))
                async with engine.begin() as writer:
                    await writer.execute(_BUMP, {"id": 1})
                await reader.execute(_BUMP, {"id": 1})
            except DBAPIError as exc:
                return exc
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()
    raise AssertionError("no serialization failure")
