"""The access watch on real databases migrated by a service's history: any change of tokens or
people by another connection moves the generation (SQLite at the next look; PostgreSQL as the
notification arrives, measured), other writes do not, and a lost LISTEN connection vouches for
nothing until it is back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import insert, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.access.watch import PostgresAccessWatch, SqliteAccessWatch, access_watch_for
from shared.auth import store_token
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.migrate import upgrade
from tests.support.harness import SERVICES, eventually

INFRA = SERVICES["ingest"].infra


async def _migrated(url: str) -> AsyncEngine:
    await asyncio.to_thread(upgrade, SERVICES["ingest"].migrations, url)
    return create_engine(url)


async def _store(engine: AsyncEngine, token: str) -> str:
    async with session_scope(make_session_factory(engine)) as session:
        return await store_token(
            session, INFRA.api_token, token=token, name="t", roles=["operator"]
        )


async def _revoke(engine: AsyncEngine, token_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(INFRA.api_token)
            .where(INFRA.api_token.c.id == token_id)
            .values(revoked_at=datetime.now(UTC))
        )


async def _unrelated_write(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(INFRA.erased_subject).values(
                subject=str(uuid.uuid4()), erased_at=datetime.now(UTC)
            )
        )


async def test_sqlite_sees_every_change_of_tokens_and_people_at_the_next_look(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"
    engine = await _migrated(url)
    watch = access_watch_for(url)
    assert isinstance(watch, SqliteAccessWatch)
    try:
        first = watch.generation()
        assert first is not None
        assert watch.generation() == first  # nothing changed

        token_id = await _store(engine, "vo_a")
        after_insert = watch.generation()
        assert after_insert is not None
        assert after_insert > first
        await _unrelated_write(engine)  # the file changed, tokens did not
        assert watch.generation() == after_insert
        await _revoke(engine, token_id)
        after_revoke = watch.generation()
        assert after_revoke is not None
        assert after_revoke > after_insert
        async with engine.begin() as connection:
            await connection.execute(
                insert(INFRA.access_person).values(
                    id="p1",
                    name="Paul",
                    roles="operator",
                    active=True,
                    version=1,
                    updated_at=datetime.now(UTC),
                )
            )
        after_person = watch.generation()
        assert after_person is not None
        assert after_person > after_revoke
    finally:
        await watch.close()
        await engine.dispose()


async def test_sqlite_not_migrated_vouches_for_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    watch = SqliteAccessWatch(path)
    assert watch.generation() is None
    await watch.close()


@pytest.mark.postgres
async def test_postgres_notifies_at_commit_and_vouches_only_while_listening(
    postgres_url: str, record_property: Callable[[str, object], None]
) -> None:
    engine = await _migrated(postgres_url)
    name = f"test.access.{uuid.uuid4().hex[:8]}"
    watch = PostgresAccessWatch(postgres_url, application_name=name)
    try:
        assert watch.generation() is None  # connecting: nothing is vouched for yet
        await eventually(lambda: _listening(watch), timeout_s=20)
        start = watch.generation()
        assert start is not None

        await _unrelated_write(engine)
        await asyncio.sleep(0.3)
        assert watch.generation() == start  # a write elsewhere notifies nothing

        token_id = await _store(engine, "vo_b")
        committed = time.perf_counter()
        await eventually(lambda: _moved(watch, start), timeout_s=5, interval_s=0.001)
        latency_ms = (time.perf_counter() - committed) * 1000
        record_property("notify_seen_after_commit_ms", round(latency_ms, 2))
        assert latency_ms < 1000

        moved = watch.generation()
        assert moved is not None
        await _revoke(engine, token_id)
        await eventually(lambda: _moved(watch, moved), timeout_s=5, interval_s=0.001)

        # The LISTEN connection dies (a database restart): nothing is vouched for until the
        # watch is back, and then with a new generation (what changed meanwhile is forgotten).
        before_loss = watch.generation()
        assert before_loss is not None
        await _terminate(postgres_url, name)
        await eventually(lambda: _not_listening(watch), timeout_s=10, interval_s=0.005)
        await eventually(lambda: _listening(watch), timeout_s=20)
        back = watch.generation()
        assert back is not None
        assert back > before_loss
        assert watch.connections == 2
    finally:
        await watch.close()
        await engine.dispose()


async def _listening(watch: PostgresAccessWatch) -> bool:
    return watch.generation() is not None


async def _not_listening(watch: PostgresAccessWatch) -> bool:
    return watch.generation() is None


async def _moved(watch: PostgresAccessWatch, seen: int) -> bool:
    current = watch.generation()
    return current is not None and current != seen


async def _terminate(url: str, application_name: str) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            application_name,
        )
    finally:
        await connection.close()
