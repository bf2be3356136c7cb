"""The relay's wake on PostgreSQL does not grow with the rows it already published.

Published rows are deleted, and stay in the table as dead rows until a vacuum (autovacuum looks
at a database once a minute by default): at 3,000 leads/s that is up to ~180,000 rows. The take
once asked "is there any row?" by reading the heap from its first page, through every dead row,
at each wake: most of PostgreSQL's CPU under load, growing between vacuums (docs/ops.md). It now
finds the oldest row through the primary key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from shared.outbox_postgres import PostgresOutbox
from tests.support.harness import migrate, settings_for
from tests.support.infra import create_database, drop_database

# ~2,500 pages: under a quarter of shared_buffers (128 MB here), where PostgreSQL would start a
# heap scan where the last one ended (synchronized scans) and the old take could be lucky.
DEAD_ROWS = 10_000
_ROW = (
    "INSERT INTO outbox_event (event_id, event_type, topic, subject, key, value, headers,"
    " created_at, attempts) SELECT gen_random_uuid()::text, 'lead.received.v1', 'leads',"
    " 'lead-' || n, convert_to('k', 'UTF8'), convert_to(repeat('v', 1500), 'UTF8'), '[]',"
    " now(), 0 FROM generate_series(1, $1::int) AS n"
)


@pytest.fixture
async def ingest_url() -> AsyncIterator[str]:
    url = await create_database()
    try:
        await migrate(settings_for("ingest", database_url=url, bus="embedded"))
        yield url
    finally:
        await drop_database(url)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _blocks(plan: dict[str, Any]) -> int:
    """Shared buffers the whole statement touched (hit or read): the top node's counts include
    its children's, CTEs and initplans too."""
    top = plan["Plan"]
    return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])


@pytest.mark.postgres
async def test_the_take_reads_a_handful_of_pages_behind_thousands_of_dead_rows(
    ingest_url: str,
) -> None:
    connection = await asyncpg.connect(_dsn(ingest_url))
    outbox = PostgresOutbox(
        make_url(ingest_url), "outbox_event", lock_key=4242, application_name="test.relay"
    )
    try:
        # What the relay leaves behind between two vacuums: published rows, deleted.
        await connection.execute("ALTER TABLE outbox_event SET (autovacuum_enabled = false)")
        await connection.execute(_ROW, DEAD_ROWS)
        # Committed durably, as every deletion is within the WAL writer's delay (the relay's
        # own commit asynchronously; the test servers run with synchronous_commit off): until
        # then PostgreSQL cannot tell an index scan that the rows are dead to everyone, and
        # neither take could step over them cheaply.
        await connection.execute("SET synchronous_commit = on")
        await connection.execute("DELETE FROM outbox_event")
        await connection.execute(_ROW, 3)
        heap_pages = await connection.fetchval(
            "SELECT pg_relation_size('outbox_event') / current_setting('block_size')::int"
        )
        assert heap_pages > 2_000  # the dead rows are there to be stepped over

        taken = await outbox.take(100)
        assert taken is not None
        ids, _, records = taken
        assert len(ids) == 3
        assert [record[0] for record in records] == ["leads"] * 3
        await outbox.failed(ids, "the bus is away")  # the rows stay, the lock is released

        # The next wake, as every wake until the vacuum: the rows are still behind the dead.
        explained = await connection.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {outbox._take}", 4243, 100
        )
        [plan] = json.loads(explained)
        await connection.execute("SELECT pg_advisory_unlock_all()")
    finally:
        await outbox.close()
        await connection.close()
    # The heap scan read every page up to the live rows (2,500 here); the primary key walks its
    # leaf pages only (~1 per 350 dead rows).
    assert _blocks(plan) < heap_pages / 10, plan


@pytest.mark.postgres
async def test_an_empty_outbox_takes_no_lock_and_a_busy_one_is_left_to_its_holder(
    ingest_url: str,
) -> None:
    connection = await asyncpg.connect(_dsn(ingest_url))
    first = PostgresOutbox(make_url(ingest_url), "outbox_event", lock_key=7, application_name="a")
    second = PostgresOutbox(make_url(ingest_url), "outbox_event", lock_key=7, application_name="b")
    try:
        assert await first.take(10) is None
        held = await connection.fetchval("SELECT count(*) FROM pg_locks WHERE locktype='advisory'")
        assert held == 0
        await connection.execute(_ROW, 2)
        await connection.execute("DELETE FROM outbox_event WHERE subject = 'lead-1'")
        taken = await first.take(10)
        assert taken is not None
        assert len(taken[0]) == 1
        assert await second.take(10) is None  # the first holds the lock until done
        await first.done(taken[0])
        assert await second.take(10) is None  # nothing left
    finally:
        await first.close()
        await second.close()
        await connection.close()
