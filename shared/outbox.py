"""Transactional outbox: the event row is written in the same transaction as the state change,
and a relay publishes pending rows in order and deletes them once the bus has stored them
(nothing personal lingers): on PostgreSQL in two round trips per batch on a connection of its own
(``shared.outbox_postgres``); on SQLite it reads, publishes, then deletes exactly the rows read.

The relay wakes on work: a commit that staged an event wakes it at once (``wake_after_commit``
in this process, ``shared.db.wakeup.ChangeListener`` from other processes), and it polls only as
a slow fallback (``outbox_poll_interval_s``). With several replicas, one relay publishes at a time
(a PostgreSQL advisory lock taken by the very statement that reads the batch, released by the
one that deletes it), which keeps the order of each lead's events; the others find it held and
take over if it dies.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import structlog
from prometheus_client import Counter as MetricCounter
from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Insert,
    Row,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared.aio import sleep_or_stop
from shared.bus.protocol import Bus, BusUnavailable
from shared.clock import utcnow
from shared.db.session import SessionFactory, read_only, session_scope, wake_after_commit
from shared.db.wakeup import Signal
from shared.events.catalogue import spec_for
from shared.events.envelope import Envelope, Headers
from shared.metrics import ServiceMetrics
from shared.outbox_postgres import PostgresOutbox
from shared.redact import safe_error_text
from shared.tracing import current_traceparent

log = structlog.get_logger(__name__)

_MIN_BACKOFF_S = 0.2
_MAX_BACKOFF_S = 5.0


def event_row(*, source: str, event_type: str, subject: str, payload: BaseModel) -> dict[str, Any]:
    """The outbox row of ``payload``'s event (CloudEvents envelope, current trace context).

    The data is dumped from the payload; it is validated again only when the payload is not the
    catalogue's model for ``event_type`` (a dump of that very model cannot break its schema).
    """
    spec = spec_for(event_type)
    data = payload.model_dump(mode="json")
    if type(payload) is not spec.payload:
        spec.payload.model_validate(data)
    envelope = Envelope(
        source=source,
        type=event_type,
        subject=subject,
        traceparent=current_traceparent.get(),
        data=data,
    )
    return {
        "event_id": envelope.id,
        "event_type": event_type,
        "topic": spec.topic,
        "key": envelope.to_key(),
        "value": envelope.to_value(),
        "headers": [[name, value.decode()] for name, value in envelope.to_headers()],
        "subject": subject,
        "created_at": utcnow(),
        "attempts": 0,
        "last_error": None,
    }


async def stage(
    session: AsyncSession,
    outbox: Table,
    *,
    source: str,
    event_type: str,
    subject: str,
    payload: BaseModel,
) -> None:
    """Stage an event for publishing; it is committed with the caller's transaction, which
    then wakes this process's relay (other processes' relays are woken by the database)."""
    await session.execute(
        insert_into(outbox),
        event_row(source=source, event_type=event_type, subject=subject, payload=payload),
    )
    wake_after_commit(session, outbox.name)


def event_source(service: str) -> str:
    """The CloudEvents ``source`` of a service's events."""
    return f"/vo-leads/{service}"


@dataclass(frozen=True)
class Outbox:
    """A service's outbox table bound to its event source: ``stage`` is all callers need."""

    table: Table
    source: str

    async def stage(
        self, session: AsyncSession, event_type: str, subject: str, payload: BaseModel
    ) -> None:
        """Stage an event for publishing; it is committed with the caller's transaction."""
        await stage(
            session,
            self.table,
            source=self.source,
            event_type=event_type,
            subject=subject,
            payload=payload,
        )


@cache
def insert_into(outbox: Table) -> Insert:
    # Built once and executed with parameters: no statement construction per event.
    return insert(outbox)


def _record_of(row: Row[Any]) -> tuple[str, bytes | None, bytes, Headers]:
    """An outbox row as the bus publishes it."""
    return (row.topic, row.key, row.value, [(name, value.encode()) for name, value in row.headers])


def _exactly(table: Table, rows: Sequence[Row[Any]]) -> ColumnElement[bool]:
    """The rows read, and only them: by id *and* event id. On SQLite ``FOR UPDATE`` locks
    nothing, so an eraser may delete a row the relay holds and stage a new one meanwhile; the
    event id (a fresh UUID per event) keeps a row the relay never published out of its reach."""
    return and_(
        table.c.id.in_([row.id for row in rows]),
        table.c.event_id.in_([row.event_id for row in rows]),
    )


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        session_factory: SessionFactory,
        table: Table,
        bus: Bus,
        metrics: ServiceMetrics,
        batch_size: int = 100,
        poll_interval_s: float = 5.0,
        wakeup: Signal | None = None,
        gauge_interval_s: float = 15.0,
    ) -> None:
        self._service = service
        self._session_factory = session_factory
        self._table = table
        self._bus = bus
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._wakeup = wakeup
        self._gauge_interval_s = gauge_interval_s
        self._lock_key = zlib.crc32(f"outbox:{service}".encode())
        engine = session_factory.kw["bind"]
        # PostgreSQL: two round trips per batch on the relay's own connection (outbox_postgres).
        self._postgres: PostgresOutbox | None = None
        if engine.dialect.name == "postgresql":
            self._postgres = PostgresOutbox(
                engine.url,
                table.name,
                lock_key=self._lock_key,
                application_name=f"{service}.outbox-relay",
            )
        # Each event type's counter, looked up once (not a labels() call per event).
        self._published: dict[str, MetricCounter] = {}
        self._pending = select(table).order_by(table.c.id).limit(batch_size).with_for_update()

    async def backlog(self) -> int:
        async with read_only(self._session_factory) as session:
            count = await session.scalar(select(func.count()).select_from(self._table))
        return int(count or 0)

    async def relay_once(self) -> int:
        """Publish one batch. Returns how many rows were published (0: nothing to do or not
        the active relay). Raises BusUnavailable when the bus refused the batch."""
        if self._postgres is not None:
            return await self._relay_postgres(self._postgres)
        return await self._relay_sqlite()

    async def close(self) -> None:
        """Close the relay's own connection (PostgreSQL); ``run`` does on its way out."""
        if self._postgres is not None:
            await self._postgres.close()

    async def _relay_postgres(self, outbox: PostgresOutbox) -> int:
        taken = await outbox.take(self._batch_size)
        if taken is None:
            return 0
        ids, types, records = taken
        try:
            await self._bus.publish_many(records)
        except BusUnavailable as exc:
            await outbox.failed(ids, safe_error_text(exc))
            raise
        except BaseException:
            await outbox.close()  # the lock goes with the connection; the rows stay
            raise
        await outbox.done(ids)
        self._count_published(types)
        return len(ids)

    async def _relay_sqlite(self) -> int:
        # SQLite (the embedded default): read, publish, then delete exactly the rows read.
        table = self._table
        async with session_scope(self._session_factory) as session:
            rows = list((await session.execute(self._pending)).all())
            if not rows:
                return 0
            try:
                await self._bus.publish_many([_record_of(row) for row in rows])
            except BusUnavailable as exc:
                await session.rollback()
                await session.execute(
                    update(table)
                    .where(_exactly(table, rows))
                    .values(attempts=table.c.attempts + 1, last_error=safe_error_text(exc))
                )
                await session.commit()
                raise
            await session.execute(delete(table).where(_exactly(table, rows)))
        self._count_published([row.event_type for row in rows])
        return len(rows)

    def _count_published(self, event_types: Sequence[str]) -> None:
        if len(event_types) == 1:  # the usual wake: one event (no Counter)
            self._published_counter(event_types[0]).inc()
            return
        for event_type, count in Counter(event_types).items():
            self._published_counter(event_type).inc(count)

    def _published_counter(self, event_type: str) -> MetricCounter:
        counter = self._published.get(event_type)
        if counter is None:
            counter = self._published[event_type] = self._metrics.events_published.labels(
                self._service, event_type
            )
        return counter

    async def run(self, stop: asyncio.Event) -> None:
        """Publish while there is work; then wait for a wake-up (or the fallback poll)."""
        try:
            await self._run(stop)
        finally:
            await self.close()

    async def _run(self, stop: asyncio.Event) -> None:
        backoff = 0.0
        next_gauge = time.monotonic()
        while not stop.is_set():
            seen = self._wakeup.generation if self._wakeup is not None else 0
            failed = True
            published = 0
            try:
                published = await self.relay_once()
                failed = False
            except BusUnavailable as exc:
                log.warning("outbox.publish_failed", error=safe_error_text(exc))
            except Exception as exc:
                log.error("outbox.relay_error", error=safe_error_text(exc))
            if time.monotonic() >= next_gauge:
                next_gauge = time.monotonic() + self._gauge_interval_s
                await self._observe_backlog()
            if failed:
                backoff = min(max(backoff * 2, _MIN_BACKOFF_S), _MAX_BACKOFF_S)
                await sleep_or_stop(stop, backoff)
                continue
            backoff = 0.0
            if published >= self._batch_size:
                continue  # more rows are waiting
            if self._wakeup is None:
                await sleep_or_stop(stop, self._poll_interval_s)
            else:
                await self._wakeup.wait(seen, self._poll_interval_s, stop)

    async def _observe_backlog(self) -> None:
        try:
            self._metrics.outbox_backlog.labels(self._service).set(await self.backlog())
        except Exception as exc:
            log.warning("outbox.backlog_unknown", error=safe_error_text(exc))
