"""Transactional outbox: the event row is written in the same transaction as the state change,
and a relay publishes pending rows in order, then deletes them (nothing personal lingers).

With several replicas, one relay publishes at a time (a PostgreSQL advisory lock), which keeps the
order of each lead's events; the others wait and take over if it dies.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import structlog
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
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared.aio import sleep_or_stop
from shared.bus.protocol import Bus, BusUnavailable
from shared.clock import utcnow
from shared.db.session import SessionFactory, session_scope
from shared.events.catalogue import spec_for
from shared.events.envelope import Envelope
from shared.metrics import ServiceMetrics
from shared.redact import safe_error_text
from shared.tracing import current_traceparent

log = structlog.get_logger(__name__)

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
    """Stage an event for publishing; it is committed with the caller's transaction."""
    await session.execute(
        insert_into(outbox),
        event_row(source=source, event_type=event_type, subject=subject, payload=payload),
    )


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
        poll_interval_s: float = 0.2,
    ) -> None:
        self._service = service
        self._session_factory = session_factory
        self._table = table
        self._bus = bus
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._lock_key = zlib.crc32(f"outbox:{service}".encode())

    async def backlog(self) -> int:
        async with self._session_factory() as session:
            count = await session.scalar(select(func.count()).select_from(self._table))
        return int(count or 0)

    async def relay_once(self) -> int:
        """Publish one batch. Returns how many rows were published (0: nothing to do or not
        the active relay). Raises BusUnavailable when the bus refused the batch."""
        table = self._table
        async with session_scope(self._session_factory) as session:
            if session.get_bind().dialect.name == "postgresql":
                got_lock = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": self._lock_key}
                )
                if not got_lock:
                    return 0
            rows = (
                await session.execute(
                    select(table).order_by(table.c.id).limit(self._batch_size).with_for_update()
                )
            ).all()
            if not rows:
                return 0
            published = _exactly(table, rows)
            try:
                await self._bus.publish_many(
                    [
                        (
                            row.topic,
                            row.key,
                            row.value,
                            [(name, value.encode()) for name, value in row.headers],
                        )
                        for row in rows
                    ]
                )
            except BusUnavailable as exc:
                await session.execute(
                    update(table)
                    .where(published)
                    .values(attempts=table.c.attempts + 1, last_error=safe_error_text(exc))
                )
                await session.commit()
                raise
            await session.execute(delete(table).where(published))
        for row in rows:
            self._metrics.events_published.labels(self._service, row.event_type).inc()
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self._poll_interval_s
        while not stop.is_set():
            try:
                published = await self.relay_once()
                backoff = self._poll_interval_s
            except BusUnavailable as exc:
                log.warning("outbox.publish_failed", error=safe_error_text(exc))
                published = 0
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            except Exception as exc:
                log.error("outbox.relay_error", error=safe_error_text(exc))
                published = 0
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            try:
                self._metrics.outbox_backlog.labels(self._service).set(await self.backlog())
            except Exception as exc:
                log.warning("outbox.backlog_unknown", error=safe_error_text(exc))
            if published < self._batch_size:
                await sleep_or_stop(stop, backoff)
