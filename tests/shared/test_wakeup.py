"""Wake-ups: the in-process signal, the commit that notifies it (never a rollback), the SQLite
watcher, PostgreSQL LISTEN/NOTIFY through the migrations' triggers (and a listener that comes
back after its connection is killed), and the embedded bus's consumers woken by a publish instead
of polling the file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import insert, text

from ingest.bootstrap import SERVICE as INGEST
from shared.bus.embedded import EmbeddedBus
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.migrate import upgrade
from shared.db.session import wake_after_commit, wakeups_of
from shared.db.wakeup import OUTBOX, ChangeListener, Signal, SqliteWatcher, Wakeups
from shared.events import Envelope, Topics
from tests.support.harness import eventually
from tests.support.infra import create_database, drop_database

OUTBOX_ROW = {
    "event_type": "lead.received.v1",
    "topic": "vo.leads",
    "key": b"lead",
    "value": b"{}",
    "headers": [],
    "subject": "lead",
    "attempts": 0,
}


async def test_a_signal_wakes_its_waiters_and_is_never_lost() -> None:
    signal = Signal()
    seen = signal.generation
    signal.notify()  # before anyone waits: the next wait past ``seen`` returns at once
    assert await signal.wait(seen, 5.0)
    seen = signal.generation
    started = time.monotonic()
    assert not await signal.wait(seen, 0.05)
    assert time.monotonic() - started >= 0.04
    waiters = [asyncio.create_task(signal.wait(seen, 5.0)) for _ in range(3)]
    await asyncio.sleep(0)
    signal.notify()
    assert await asyncio.gather(*waiters) == [True, True, True]
    stop = asyncio.Event()
    stop.set()
    assert not await signal.wait(signal.generation, 5.0, stop)


async def test_a_wait_spawns_no_task_and_a_stop_ends_it() -> None:
    """A wait is a future and a timer: the waits of a relay or a sender, one per wake, share
    one task per stop event (two tasks and an ``asyncio.wait`` per wait before)."""
    loop = asyncio.get_running_loop()
    created = 0
    factory = loop.get_task_factory()

    def counting(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        nonlocal created
        created += 1
        if factory is not None:
            return factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    signal, stop = Signal(), asyncio.Event()
    loop.set_task_factory(counting)  # type: ignore[arg-type]
    try:
        for _ in range(20):
            seen = signal.generation
            loop.call_soon(signal.notify)
            assert await signal.wait(seen, 5.0, stop)
            assert not await signal.wait(signal.generation, 0.001, stop)  # timed out
    finally:
        loop.set_task_factory(factory)
    assert created <= 1
    waiting = asyncio.create_task(signal.wait(signal.generation, 5.0, stop))
    await asyncio.sleep(0)
    stop.set()
    assert not await asyncio.wait_for(waiting, 1.0)
    cancelled = asyncio.create_task(signal.wait(signal.generation, 5.0))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not signal._waiters  # a cancelled wait leaves nothing behind


async def test_a_commit_wakes_the_channel_and_a_rollback_does_not(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    sessions = make_session_factory(engine)
    signal = wakeups_of(sessions).signal(OUTBOX)
    try:
        seen = signal.generation

        async def rolled_back() -> None:
            async with session_scope(sessions) as session:
                wake_after_commit(session, OUTBOX)
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            await rolled_back()
        assert signal.generation == seen
        async with session_scope(sessions) as session:
            wake_after_commit(session, OUTBOX)
            wake_after_commit(session, OUTBOX)  # once per commit, however often asked
        assert signal.generation == seen + 1
    finally:
        await engine.dispose()


def test_the_sqlite_watcher_names_the_tables_that_got_rows(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE outbox_event (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
    writer.execute("CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT)")
    watcher = SqliteWatcher(path, ["outbox_event"])
    try:
        watcher.changed()  # the first look only learns where things are
        assert watcher.changed() == []
        writer.execute("INSERT INTO other (v) VALUES ('x')")
        assert watcher.changed() == []  # the file moved, not the watched table
        writer.execute("INSERT INTO outbox_event (v) VALUES ('x')")
        assert watcher.changed() == ["outbox_event"]
        assert watcher.changed() == []
        writer.execute("DELETE FROM outbox_event")  # the relay emptied it: no work
        assert watcher.changed() == []
        writer.execute("INSERT INTO outbox_event (v) VALUES ('y')")
        assert watcher.changed() == ["outbox_event"]
    finally:
        watcher.close()
        writer.close()


@pytest.fixture
async def ingest_postgres() -> AsyncIterator[str]:
    """A PostgreSQL database migrated like ingest's (its outbox has the NOTIFY trigger)."""
    url = await create_database()
    await asyncio.to_thread(upgrade, INGEST.migrations, url)
    yield url
    await drop_database(url)


async def _stage(url: str, event_id: str) -> None:
    """An outbox row written by another engine (another process, as far as wake-ups know)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(INGEST.infra.outbox_event).values(
                    event_id=event_id, created_at=datetime.now(UTC), **OUTBOX_ROW
                )
            )
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_notifies_inserts_and_the_listener_survives_a_lost_connection(
    ingest_postgres: str,
) -> None:
    wakeups = Wakeups()
    signal = wakeups.signal(OUTBOX)
    listener = ChangeListener(ingest_postgres, wakeups, application_name="test.wakeups")
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        await asyncio.wait_for(listener.listening.wait(), 20)
        seen = signal.generation
        await _stage(ingest_postgres, "first")
        assert await signal.wait(seen, 10.0)

        # The server ends the LISTEN connection (as a restart would): the listener reconnects,
        # wakes every channel (what was committed meanwhile), and hears new inserts again.
        engine = create_engine(ingest_postgres)
        try:
            async with engine.begin() as connection:
                killed = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = 'test.wakeups'"
                    )
                )
        finally:
            await engine.dispose()
        assert killed == 1

        async def reconnected() -> bool:
            return listener.connections == 2 and listener.listening.is_set()

        await eventually(reconnected, timeout_s=30)
        seen = signal.generation
        await _stage(ingest_postgres, "second")
        assert await signal.wait(seen, 10.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


@pytest.mark.postgres
async def test_this_process_commits_wake_its_loops_once_not_again_through_the_listener(
    ingest_postgres: str,
) -> None:
    """A commit of this process woke its loops already (``wake_after_commit``): the listener
    ignores the NOTIFY of its own connections, which would only start a second, empty pass.
    Another process's commit is still heard."""
    engine = create_engine(ingest_postgres)
    sessions = make_session_factory(engine)
    wakeups = wakeups_of(sessions)
    signal = wakeups.signal(OUTBOX)
    listener = ChangeListener(ingest_postgres, wakeups, application_name="test.own")
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        await asyncio.wait_for(listener.listening.wait(), 20)
        seen = signal.generation
        async with session_scope(sessions) as session:
            await session.execute(
                insert(INGEST.infra.outbox_event).values(
                    event_id="ours", created_at=datetime.now(UTC), **OUTBOX_ROW
                )
            )
            wake_after_commit(session, OUTBOX)
        assert signal.generation == seen + 1  # at commit, in the process
        assert len(wakeups.own_backends) >= 1
        await asyncio.sleep(1.0)  # the NOTIFY arrives within milliseconds: it was ignored
        assert signal.generation == seen + 1

        await _stage(ingest_postgres, "theirs")  # another engine: another process's backend
        assert await signal.wait(seen + 1, 10.0)
        # A connection closed is no longer ours (its pid may serve another process later).
        await engine.dispose()
        assert wakeups.own_backends == set()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await engine.dispose()


@pytest.mark.postgres
async def test_the_notify_trigger_costs_the_writer_no_statement(ingest_postgres: str) -> None:
    """The trigger notifies inside the INSERT: the channel hears it once per transaction."""
    dsn = ingest_postgres.replace("postgresql+asyncpg", "postgresql")
    listening = await asyncpg.connect(dsn)
    heard: list[str] = []
    try:
        await listening.add_listener(OUTBOX, lambda *args: heard.append(args[2]))
        await _stage(ingest_postgres, "a")
        await eventually(lambda: _true_if(heard), timeout_s=10)
        await asyncio.sleep(0.2)
        assert heard == [OUTBOX]
    finally:
        await listening.close()


async def _true_if(items: list[str]) -> bool:
    return bool(items)


async def test_an_embedded_consumer_is_woken_by_a_publish_not_by_polling(tmp_path: Path) -> None:
    publisher = EmbeddedBus(tmp_path / "bus.db")  # another process's bus, as far as it knows
    reader_bus = EmbeddedBus(tmp_path / "bus.db")
    await publisher.start()
    await reader_bus.start()
    consumer = reader_bus.consumer(group_id="g", topics=[Topics.LEADS])
    await consumer.start()
    fetches = 0
    fetch = consumer._fetch

    async def counted(max_records: int) -> list[object]:
        nonlocal fetches
        fetches += 1
        return list(await fetch(max_records))

    consumer._fetch = counted  # type: ignore[method-assign,assignment]
    try:
        idle = asyncio.create_task(consumer.poll(timeout_s=1.0, max_records=10))
        assert await idle == []
        assert fetches <= 2  # no query every few milliseconds while nothing comes
        envelope = Envelope(source="/t", type="lead.received.v1", subject="l", data={})
        polling = asyncio.create_task(consumer.poll(timeout_s=30.0, max_records=10))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await publisher.publish(
            Topics.LEADS, key=b"l", value=envelope.to_value(), headers=envelope.to_headers()
        )
        records = await polling
        assert len(records) == 1
        assert time.monotonic() - started < 2.0  # the watcher, not the 30 s timeout
    finally:
        await consumer.stop()
        await reader_bus.stop()
        await publisher.stop()
