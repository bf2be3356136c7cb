"""The outbox relay's PostgreSQL side: two round trips per batch on a connection of its own.

A wake used to cost an ORM session, a pool checkout and three round trips (``BEGIN``, the
``DELETE … RETURNING`` of the batch, ``COMMIT``): at one event per wake, the relay was most of a
worker's CPU. Here each batch is two statements in autocommit, each one round trip of an asyncpg
statement prepared once (asyncpg's statement cache) on the relay's own connection:

1. ``take``: a session advisory lock (one relay publishes at a time, which keeps each key's
   order) and the oldest rows, read together. An empty outbox takes no lock.
2. after the bus acknowledged the batch, ``done``: the rows are deleted and the lock released, in
   one statement. A refused batch instead gets its ``attempts`` and ``last_error`` (``failed``).

At-least-once as before: a row is deleted only once the bus has it, and a crash between the two
statements leaves it to be published again (consumers drop duplicates by event id). The lock
dies with the connection, so another replica takes over after a crash. The connection runs
with ``synchronous_commit = off``: it only deletes rows the bus already has (a deletion lost in a
server crash publishes them again), so it never waits for a WAL flush.

Rows are not locked while they are published: an erasure may delete a row the relay is
publishing (its answer, staged after, is published after it), as on SQLite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import URL

from shared.events.envelope import Headers

Published = tuple[str, bytes | None, bytes, Headers]

_CONNECT_TIMEOUT_S = 10.0


class PostgresOutbox:
    """The relay's connection to one outbox table (opened on first use, reopened after an
    error). ``take`` and then exactly one of ``done``/``failed`` per batch taken."""

    def __init__(self, url: URL, table: str, *, lock_key: int, application_name: str) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._application_name = application_name
        self._lock_key = lock_key
        self._connection: asyncpg.Connection | None = None
        quoted = '"' + table.replace('"', '""') + '"'
        # MATERIALIZED: the lock is tried once per statement, and only if there is work. The
        # oldest row is found through the primary key, never by reading the heap: between two
        # vacuums the table holds every row published since (deleted, dead), and a scan for
        # "any row" read all their pages, at every wake (docs/operations.md, *Workers*).
        self._take = (
            f"WITH head AS MATERIALIZED (SELECT id FROM {quoted} ORDER BY id LIMIT 1),"
            " lock AS MATERIALIZED ("
            " SELECT head.id AS head, pg_try_advisory_lock($1::bigint) AS held FROM head)"
            " SELECT lock.held, batch.id, batch.event_type, batch.topic, batch.key, batch.value,"
            " batch.headers::text AS headers FROM lock LEFT JOIN LATERAL ("
            f" SELECT id, event_type, topic, key, value, headers FROM {quoted}"
            # The statement's one snapshot: no visible row lies below the head, and the index
            # scan starts at it instead of stepping over the dead entries again.
            " WHERE lock.held AND id >= lock.head ORDER BY id LIMIT $2) AS batch ON true"
        )
        self._done = (
            f"WITH gone AS (DELETE FROM {quoted} WHERE id = ANY($1::bigint[]))"
            " SELECT pg_advisory_unlock($2::bigint)"
        )
        self._failed = (
            f"WITH failed AS (UPDATE {quoted} SET attempts = attempts + 1, last_error = $2"
            " WHERE id = ANY($1::bigint[])) SELECT pg_advisory_unlock($3::bigint)"
        )
        self._release = "SELECT pg_advisory_unlock($1::bigint)"

    async def take(self, limit: int) -> tuple[list[int], list[str], list[Published]] | None:
        """The oldest rows (ids, event types, records as the bus publishes them), the lock held;
        None when another relay holds the lock or there is nothing to publish (no lock held)."""
        connection = await self._connect()
        rows = await self._guarded(connection.fetch(self._take, self._lock_key, limit))
        if not rows or not rows[0]["held"]:
            return None
        if rows[0]["id"] is None:  # the rows went between the two looks of the statement
            await self._guarded(connection.fetchval(self._release, self._lock_key))
            return None
        ids = [row["id"] for row in rows]
        types = [row["event_type"] for row in rows]
        records: list[Published] = [
            (
                row["topic"],
                row["key"],
                row["value"],
                [(name, value.encode()) for name, value in orjson.loads(row["headers"])],
            )
            for row in rows
        ]
        return ids, types, records

    async def done(self, ids: Sequence[int]) -> None:
        """The bus has the rows: delete them, release the lock."""
        connection = self._require()
        await self._guarded(connection.fetchval(self._done, ids, self._lock_key))

    async def failed(self, ids: Sequence[int], error: str) -> None:
        """The bus refused the rows: count the attempt on them, release the lock."""
        connection = self._require()
        await self._guarded(connection.fetchval(self._failed, ids, error, self._lock_key))

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await connection.close(timeout=5)

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn,
                timeout=_CONNECT_TIMEOUT_S,
                server_settings={
                    "application_name": self._application_name,
                    "synchronous_commit": "off",
                },
            )
        return self._connection

    def _require(self) -> asyncpg.Connection:
        if self._connection is None:
            raise ConnectionError("the relay's connection was lost")
        return self._connection

    async def _guarded(self, query: Any) -> Any:
        """Any error drops the connection: a lock it may hold goes with it (never left held
        by a relay that no longer knows it holds it)."""
        try:
            return await query
        except BaseException:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.terminate()
            raise
