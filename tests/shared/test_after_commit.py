"""``after_commit``: actions registered in a unit of work run once it has committed, in order,
never after a rollback; a failing action is logged and does not undo the commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from shared.db import create_engine, make_session_factory, session_scope
from shared.db.session import after_commit
from tests.support.messaging import effect, metadata


async def test_actions_run_after_commit_and_never_after_rollback(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = make_session_factory(engine)
    ran: list[str] = []

    async def seen_committed() -> None:
        async with sessions() as other:  # another connection sees the committed row
            count = await other.scalar(select(func.count()).select_from(effect))
        ran.append(f"committed:{count}")

    async def failing() -> None:
        raise RuntimeError("checkpoint failed")

    async def second() -> None:
        ran.append("second")

    try:
        async with session_scope(sessions) as session:
            await session.execute(insert(effect).values(event_id="e1", label="a"))
            after_commit(session, seen_committed)
            after_commit(session, failing)
            after_commit(session, second)
        assert ran == ["committed:1", "second"]

        ran.clear()

        async def rolled_back() -> None:
            async with session_scope(sessions) as session:
                await session.execute(insert(effect).values(event_id="e2", label="b"))
                after_commit(session, second)
                raise ValueError("undo")

        with pytest.raises(ValueError, match="undo"):
            await rolled_back()
        assert ran == []
    finally:
        await engine.dispose()
