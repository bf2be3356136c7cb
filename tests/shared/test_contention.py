"""PostgreSQL contention (a serialization failure, SQLSTATE 40001; a deadlock victim, 40P01) is
neither an outage nor a fault of the work: a request that loses gets a 503 problem+json with a
short ``Retry-After`` (never a 500), and a consumer retries the event (rewound when it keeps
losing), never dead-letters it. The errors are PostgreSQL's own, from real contention."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi import APIRouter
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.api import SessionDep
from shared.consumer import Handler
from shared.db import create_engine
from shared.events import Envelope
from shared.outage import is_contention, is_outage
from tests.shared.test_consumer_batch import consumer_for, event, polled, publish
from tests.support.contention import create_rows, deadlock, lock_in_turn, serialization_failure
from tests.support.messaging import Harness, MessagingSettings, infra, messaging_harness
from tests.support.probe_app import probe_client, probe_settings

pytestmark = pytest.mark.postgres


async def test_a_deadlock_and_a_serialization_failure_are_contention(postgres_url: str) -> None:
    lost = await deadlock(postgres_url)
    assert getattr(lost.orig, "sqlstate", None) == "40P01"
    serialization = await serialization_failure(postgres_url)
    assert getattr(serialization.orig, "sqlstate", None) == "40001"
    for error in (lost, serialization):
        assert is_contention(error)
        assert not is_outage(error)
    assert not is_contention(ValueError("a bug"))


router = APIRouter()
BARRIERS: dict[str, asyncio.Barrier] = {}


@router.post("/transfer/{first}/{second}")
async def transfer(first: int, second: int, session: SessionDep) -> dict[str, str]:
    connection = await session.connection()
    await lock_in_turn(connection, first, second, BARRIERS["transfer"])
    return {"done": "yes"}


async def test_a_request_chosen_as_deadlock_victim_gets_a_503_with_retry_after(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(postgres_url)
    try:
        await create_rows(engine)
    finally:
        await engine.dispose()
    BARRIERS["transfer"] = asyncio.Barrier(2)
    settings = probe_settings(tmp_path, database_url=postgres_url)
    async with probe_client(settings, [router]) as client:
        responses = await asyncio.gather(client.post("/transfer/1/2"), client.post("/transfer/2/1"))
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200, 503], [response.text for response in responses]
        lost = next(response for response in responses if response.status_code == 503)
        assert lost.headers["content-type"] == "application/problem+json"
        assert lost.headers["retry-after"] == "1"
        assert lost.json()["status"] == 503
        # The same request sent again succeeds.
        BARRIERS["transfer"] = asyncio.Barrier(1)
        assert (await client.post("/transfer/2/1")).status_code == 200


async def test_a_consumer_retries_contention_and_never_dead_letters_it(
    postgres_url: str, tmp_path: Path
) -> None:
    lost = await deadlock(postgres_url)  # PostgreSQL's own error, raised by the handler below
    calls: list[str] = []

    async def loses_three_times(session: AsyncSession, envelope: Envelope) -> None:
        calls.append(envelope.id)
        if len(calls) <= 3:
            raise lost

    settings = MessagingSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        bus="embedded",
        embedded_bus_path=tmp_path / "bus.db",
    )
    async with messaging_harness(settings) as harness:
        await check_retried(harness, loses_three_times, calls)


async def check_retried(harness: Harness, handler: Handler, calls: list[str]) -> None:
    consumer = consumer_for(harness, {"lead.received.v1": handler})  # 2 attempts, then the DLQ
    await publish(harness, event("contended"))
    async with polled(harness, 1) as (reader, records):
        # The batch, then two attempts alone: each lost; rewound, not dead-lettered.
        assert not await consumer.process_batch(reader, records)
        assert len(calls) == 3
        assert await harness.count(infra.dead_letter) == 0
        again = await reader.poll(timeout_s=5, max_records=10)
        assert [record.offset for record in again] == [records[0].offset]
        assert await consumer.process_batch(reader, again)
    assert len(calls) == 4
    assert await harness.count(infra.dead_letter) == 0
    assert await harness.count(infra.processed_event) == 1


def test_the_error_classes_without_a_server() -> None:
    """asyncpg's own classes, wrapped as SQLAlchemy wraps them, carry the SQLSTATEs."""
    import asyncpg

    for error_class in (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
        wrapped = DBAPIError("UPDATE …", {}, error_class("lost"))
        assert is_contention(wrapped)
        assert not is_outage(wrapped)
