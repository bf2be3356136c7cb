"""The operators' one-statement requests (a claim, a qualification without marketing consent, a
poll of the queue) run on autocommit connections the API holds between requests
(``qualify.queue.repository.HeldConnections``): on PostgreSQL they take no connection from the
pool once warm, and answer as before. A held connection goes back to the pool after an error,
once held ``HOLD_S``, beyond ``KEEP`` idle ones, and when the app stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from qualify.queue.repository import _HELD, HeldConnections, autocommit
from shared.db.engine import create_engine
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import QUALIFICATION
from tests.support.clock import Clock

pytestmark = pytest.mark.postgres

NO_CONSENT: dict[str, Any] = {**QUALIFICATION, "consents": {}}


@pytest.fixture
async def api(postgres_url: str, tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    async with open_api(qualify_settings(postgres_url, tmp_path), clock) as api:
        yield api


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@contextmanager
def checkouts(engine: AsyncEngine) -> Iterator[list[object]]:
    """The connections taken from the engine's pool meanwhile."""
    taken: list[object] = []

    def record(*args: Any) -> None:
        taken.append(args[0])

    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", record)
    try:
        yield taken
    finally:
        event.remove(pool, "checkout", record)


async def test_operator_requests_take_no_pooled_connection_once_warm(api: QualifyApi) -> None:
    operator = await api.client("alice")
    warm, held = await api.add_lead(), await api.add_lead()
    assert (await operator.get("/v1/queue")).status_code == 200
    assert (await operator.post(f"/v1/leads/{warm}/claim")).status_code == 200
    qualified = await operator.post(f"/v1/leads/{warm}/qualification", json=NO_CONSENT)
    assert qualified.status_code == 201
    assert (await operator.post(f"/v1/leads/{held}/claim")).status_code == 200
    lead_ids = [await api.add_lead() for _ in range(3)]
    with checkouts(api.runtime.engine) as taken:
        for lead_id in lead_ids:
            polled = await operator.get("/v1/queue")
            assert polled.status_code == 200
            assert lead_id in [item["lead_id"] for item in polled.json()["items"]]
            claimed = await operator.post(f"/v1/leads/{lead_id}/claim")
            assert claimed.status_code == 200, claimed.text
            assert claimed.json()["lead_id"] == lead_id
            qualified = await operator.post(f"/v1/leads/{lead_id}/qualification", json=NO_CONSENT)
            assert qualified.status_code == 201, qualified.text
    assert taken == []
    # A refusal still answers as before (the held connection is not the session it reads in).
    other = await api.client("bob")
    assert (await other.post(f"/v1/leads/{held}/claim")).status_code == 409
    assert (await other.post(f"/v1/leads/{warm}/claim")).status_code == 409


async def test_the_app_gives_its_held_connections_back_when_it_stops(
    postgres_url: str, tmp_path: Path, clock: Clock
) -> None:
    async with open_api(qualify_settings(postgres_url, tmp_path), clock) as api:
        engine = api.runtime.engine
        operator = await api.client("alice")
        assert (await operator.get("/v1/queue")).status_code == 200
        pool = engine.sync_engine.pool
        assert pool.checkedout() == 1  # type: ignore[attr-defined]
        assert engine in _HELD
    assert engine not in _HELD
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_connection_is_reused_and_given_back_when_closed(engine: AsyncEngine) -> None:
    held = HeldConnections(engine)
    pool: Any = engine.sync_engine.pool
    async with held.connection() as first:
        assert (await first.exec_driver_sql("SELECT 1")).scalar() == 1
        assert _isolation(first) == "AUTOCOMMIT"
    async with held.connection() as second:
        assert second is first
    assert pool.checkedout() == 1
    await held.close()
    assert pool.checkedout() == 0
    # Closed: a connection lent afterwards goes straight back.
    async with held.connection():
        pass
    assert pool.checkedout() == 0


async def test_a_connection_goes_back_after_an_error(engine: AsyncEngine) -> None:
    held = HeldConnections(engine)
    pool: Any = engine.sync_engine.pool

    async def failing(sql: str) -> None:
        async with held.connection() as connection:
            await connection.exec_driver_sql(sql)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing("SELECT 1")
    assert pool.checkedout() == 0
    with pytest.raises(Exception, match="division"):
        await failing("SELECT 1/0")
    assert pool.checkedout() == 0
    await held.close()


async def test_at_most_keep_wait_and_none_beyond_hold(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldConnections(engine)
    pool: Any = engine.sync_engine.pool
    entered = asyncio.Event()
    inside = 0

    async def use() -> None:
        nonlocal inside
        async with held.connection() as connection:
            inside += 1
            if inside == HeldConnections.KEEP + 2:
                entered.set()
            await entered.wait()
            await connection.exec_driver_sql("SELECT 1")

    await asyncio.gather(*(use() for _ in range(HeldConnections.KEEP + 2)))
    assert pool.checkedout() == HeldConnections.KEEP
    # Every one held too long now: back to the pool after its next use.
    later = time.monotonic() + HeldConnections.HOLD_S + 1
    monkeypatch.setattr("shared.db.held.monotonic", lambda: later)
    for _ in range(HeldConnections.KEEP):
        async with held.connection():
            pass
    assert pool.checkedout() == 0
    await held.close()


async def test_without_the_app_a_pooled_connection_is_used(engine: AsyncEngine) -> None:
    pool: Any = engine.sync_engine.pool
    async with autocommit(engine) as connection:
        assert _isolation(connection) == "AUTOCOMMIT"
        assert (await connection.exec_driver_sql("SELECT 1")).scalar() == 1
    assert pool.checkedout() == 0


def _isolation(connection: AsyncConnection) -> object:
    assert connection.sync_connection is not None
    return connection.sync_connection.get_execution_options().get("isolation_level")
