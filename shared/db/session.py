"""Session factory, the one place where a unit of work commits, and actions to run once it has
committed (``after_commit``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.redact import safe_error_text

log = structlog.get_logger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]
AfterCommit = Callable[[], Awaitable[None]]

_AFTER_COMMIT = "after_commit"


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run ``action`` once the unit of work of ``session`` has committed, never if it rolls
    back (e.g. compact a database after an erasure: only committed deletions can be). Actions
    run in order, outside the transaction; one that fails is logged and does not undo the
    commit. Only units of work run by ``session_scope`` (requests, consumed events) run them."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@asynccontextmanager
async def session_scope(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """Commit on success, roll back on error: the only commit in business code paths. Then the
    session's ``after_commit`` actions run."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            session.info.pop(_AFTER_COMMIT, None)
            await session.rollback()
            raise
        for action in session.info.pop(_AFTER_COMMIT, []):
            try:
                await action()
            except Exception as exc:
                log.warning("db.after_commit_failed", error=safe_error_text(exc))
