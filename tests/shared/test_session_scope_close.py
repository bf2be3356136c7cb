"""``session_scope`` closes its session when the unit of work ends, its connection back in the
pool, whether it committed, rolled back or failed to roll back. Once the transaction has ended,
the close is done in place: no asyncio task (``AsyncSession.__aexit__`` runs one for its close,
a turn of the event loop per unit of work, e.g. per consumed batch)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Generator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import create_engine, make_session_factory, session_scope
from tests.support.infra import create_database, drop_database
from tests.support.messaging import effect, metadata


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()
        if request.param == "postgres":
            await drop_database(url)


def _checked_out(engine: AsyncEngine) -> int:
    return int(engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]


class _CountTasks:
    """A task factory counting the tasks created on the loop."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        self.count += 1
        return asyncio.Task(coro, loop=loop, **kwargs)


async def test_a_unit_of_work_is_closed_without_a_task(engine: AsyncEngine) -> None:
    sessions = make_session_factory(engine)
    loop = asyncio.get_running_loop()
    tasks = _CountTasks()
    loop.set_task_factory(tasks)
    try:
        async with session_scope(sessions) as session:
            await session.execute(insert(effect).values(event_id="e1", label="a"))
            assert _checked_out(engine) == 1
        committed_tasks = tasks.count

        async def rolled_back() -> None:
            async with session_scope(sessions) as session:
                await session.execute(insert(effect).values(event_id="e2", label="b"))
                raise ValueError("undo")

        with pytest.raises(ValueError, match="undo"):
            await rolled_back()
        rolled_back_tasks = tasks.count - committed_tasks
    finally:
        loop.set_task_factory(None)
    assert _checked_out(engine) == 0
    assert not session.in_transaction()
    assert (committed_tasks, rolled_back_tasks) == (0, 0)
    async with sessions() as other:
        assert (await other.scalars(select(effect.c.event_id))).all() == ["e1"]


async def test_a_failed_rollback_still_releases_the_connection(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session still in its transaction when the unit of work ends (its rollback failed) is
    closed by ``AsyncSession``'s own close: the transaction is rolled back there and the
    connection returned to the pool."""
    sessions = make_session_factory(engine)

    async def failing_rollback(self: AsyncSession) -> None:
        raise RuntimeError("rollback failed")

    monkeypatch.setattr(AsyncSession, "rollback", failing_rollback)

    async def unit_of_work() -> AsyncSession:
        async with session_scope(sessions) as session:
            await session.execute(insert(effect).values(event_id="e3", label="c"))
            raise ValueError("undo")

    with pytest.raises(RuntimeError, match="rollback failed"):
        await unit_of_work()
    monkeypatch.undo()
    assert _checked_out(engine) == 0
    async with sessions() as other:
        assert (await other.scalars(select(effect.c.event_id))).all() == []
