"""Session factory, the one place where a unit of work commits, actions to run once it has
committed (``after_commit``) and the channels to wake once it has (``wake_after_commit``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from shared.db.wakeup import Wakeups
from shared.redact import safe_error_text

log = structlog.get_logger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]
AfterCommit = Callable[[], Awaitable[None]]

_AFTER_COMMIT = "after_commit"
_WAKE = "wake_after_commit"
_WAKEUPS = "wakeups"


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions of ``engine``; they share one ``Wakeups`` (``wakeups_of``), which knows the
    PostgreSQL backends of the engine's pooled connections (``Wakeups.own_backends``)."""
    wakeups = Wakeups()
    if engine.dialect.name == "postgresql":
        _track_backends(engine, wakeups.own_backends)
    return async_sessionmaker(engine, expire_on_commit=False, info={_WAKEUPS: wakeups})


def _track_backends(engine: AsyncEngine, backends: set[int]) -> None:
    """Keep ``backends`` equal to the server pids of the engine's open connections."""
    pids: dict[int, int] = {}  # id of the pooled DBAPI connection → its backend pid

    def opened(dbapi_connection: Any, _record: Any) -> None:
        pid = dbapi_connection.driver_connection.get_server_pid()
        pids[id(dbapi_connection)] = pid
        backends.add(pid)

    def gone(dbapi_connection: Any, *_args: Any) -> None:
        pid = pids.pop(id(dbapi_connection), None)
        if pid is not None:
            backends.discard(pid)

    pool_events = engine.sync_engine.pool
    event.listen(pool_events, "connect", opened)
    for name in ("close", "close_detached", "invalidate", "soft_invalidate"):
        event.listen(pool_events, name, gone)


def wakeups_of(factory: SessionFactory) -> Wakeups:
    """The signals a unit of work of ``factory`` notifies once it has committed."""
    wakeups = factory.kw.get("info", {}).get(_WAKEUPS)
    if not isinstance(wakeups, Wakeups):
        raise LookupError("this session factory was not made by make_session_factory")
    return wakeups


@asynccontextmanager
async def single_statement(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A unit of work that is one statement, atomic by itself (a conditional UPDATE … RETURNING,
    a fenced update with its event in a CTE). On PostgreSQL it runs in autocommit: one round trip
    where BEGIN and COMMIT around it made three. Elsewhere a ``session_scope`` (SQLite's BEGIN and
    COMMIT are no round trips; switching a connection to autocommit and back costs more).
    Either way the channels given to ``wake_after_commit`` are woken once it is done."""
    engine = factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        async with session_scope(factory) as session:
            yield session
        return
    async with read_only(factory) as session:
        yield session
        # The statement committed by itself: wake as session_scope's commit does.
        channels = session.info.pop(_WAKE, None)
        if channels:
            wakeups_of(factory).notify(channels)


@asynccontextmanager
async def read_only(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session for reads that need no transaction (a probe: a count, when the next row is
    due). Its connection is in autocommit mode: each statement is one round trip, without a
    BEGIN and a ROLLBACK around it. Never write through it."""
    async with (
        autocommit_connection(factory.kw["bind"]) as connection,
        AsyncSession(bind=connection) as session,
    ):
        yield session


@asynccontextmanager
async def autocommit_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection in autocommit mode, without an ORM session: each statement is one
    round trip and commits by itself. For a read, or a write that is one atomic statement."""
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


async def open_autocommit(engine: AsyncEngine) -> AsyncConnection:
    """A pooled connection switched to autocommit, for a caller that holds it across units of
    work and closes it itself (closing gives it back to the pool, its isolation level reset)."""
    connection = await engine.connect()
    try:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
    except BaseException:
        await connection.close()
        raise
    return connection


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run ``action`` once the unit of work of ``session`` has committed, never if it rolls
    back (e.g. compact a database after an erasure: only committed deletions can be). Actions
    run in order, outside the transaction; one that fails is logged and does not undo the
    commit. Only units of work run by ``session_scope`` (requests, consumed events) run them."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def wake_after_commit(session: AsyncSession, channel: str) -> None:
    """Once this unit of work has committed, wake this process's loops waiting on ``channel``
    (e.g. the outbox relay after staging an event); other processes learn it from the
    database (``shared.db.wakeup``). Only units of work run by ``session_scope`` do."""
    channels = session.info.get(_WAKE)
    if channels is None:
        session.info[_WAKE] = {channel}
    else:
        channels.add(channel)


@asynccontextmanager
async def session_scope(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """Commit on success, roll back on error: the only commit in business code paths. Then the
    session's channels are woken and its ``after_commit`` actions run."""
    session = factory()
    try:
        try:
            yield session
            await session.commit()
        except BaseException:
            session.info.pop(_AFTER_COMMIT, None)
            session.info.pop(_WAKE, None)
            await session.rollback()
            raise
        channels = session.info.pop(_WAKE, None)
        wakeups = session.info.get(_WAKEUPS)
        if channels and isinstance(wakeups, Wakeups):
            wakeups.notify(channels)
        for action in session.info.pop(_AFTER_COMMIT, []):
            try:
                await action()
            except Exception as exc:
                log.warning("db.after_commit_failed", error=safe_error_text(exc))
    finally:
        await _close(session)


async def _close(session: AsyncSession) -> None:
    """Close ``session`` as ``async with`` does. Once its transaction has ended (committed or
    rolled back: its connection is back in the pool), closing it is no I/O, only forgetting its
    objects: done in place, where ``AsyncSession.__aexit__`` spends a task, a turn of the event
    loop and a hop into SQLAlchemy's greenlet (60-90 us of CPU per consumed batch, measured by
    ``benchmarks.consumer_batch_cpu``). A session still in a transaction (a rollback that
    failed) is closed by ``__aexit__``, its connection released even if the caller is
    cancelled meanwhile."""
    if session.in_transaction():
        await session.__aexit__(None, None, None)
    else:
        session.sync_session.close()
