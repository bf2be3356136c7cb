"""Idempotent event consumer with bounded retries and a dead-letter queue.

For each record: decode the CloudEvent, skip it if this consumer already processed its id, else run
the handler and record the id in ``processed_event`` in the same transaction (exactly-once effect
over at-least-once delivery). Offsets are committed to the bus only after that transaction.
A record that keeps failing goes to ``<topic>.dlq`` with its error; a record that is not a valid
CloudEvent goes there at once. When the database or the bus itself is down, nothing is skipped:
the consumer rewinds and tries again later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.aio import sleep_or_stop
from shared.bus.protocol import Bus, BusUnavailable, Consumer, Record
from shared.clock import utcnow
from shared.db.infra import InfraTables
from shared.db.session import SessionFactory, session_scope
from shared.events.catalogue import CATALOGUE, Topics
from shared.events.envelope import Envelope, EnvelopeError
from shared.metrics import ServiceMetrics
from shared.outage import is_outage
from shared.redact import safe_error_text
from shared.runtime import Runtime
from shared.tracing import current_traceparent, trace_id_of

log = structlog.get_logger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]

_MAX_PAUSE_S = 5.0


class InfrastructureDown(Exception):
    """The database or bus failed; the record must be retried later, not dead-lettered."""


class EventConsumer:
    def __init__(
        self,
        *,
        service: str,
        name: str,
        bus: Bus,
        topics: Sequence[str],
        handlers: Mapping[str, Handler],
        session_factory: SessionFactory,
        infra: InfraTables,
        metrics: ServiceMetrics,
        max_attempts: int = 5,
        retry_backoff_s: float = 0.2,
    ) -> None:
        self._service = service
        self.name = name
        self._bus = bus
        self._topics = list(topics)
        self._handlers = dict(handlers)
        self._session_factory = session_factory
        self._infra = infra
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._retry_backoff_s = retry_backoff_s

    async def run(self, stop: asyncio.Event) -> None:
        pause = self._retry_backoff_s
        while not stop.is_set():
            consumer = self._bus.consumer(group_id=self.name, topics=self._topics)
            try:
                await consumer.start()
            except BusUnavailable as exc:
                log.warning("consumer.start_failed", consumer=self.name, error=safe_error_text(exc))
                await sleep_or_stop(stop, pause)
                pause = min(pause * 2, _MAX_PAUSE_S)
                continue
            try:
                while not stop.is_set():
                    records = await consumer.poll(timeout_s=0.5, max_records=100)
                    await self._observe_lag(consumer)
                    if records and not await self.process_batch(consumer, records):
                        await sleep_or_stop(stop, pause)
                        pause = min(pause * 2, _MAX_PAUSE_S)
                    elif records:
                        pause = self._retry_backoff_s
            finally:
                await consumer.stop()

    async def _observe_lag(self, consumer: Consumer) -> None:
        try:
            lags = await consumer.lag()
        except Exception as exc:
            if is_outage(exc):
                return
            raise
        for (topic, partition), lag in lags.items():
            self._metrics.consumer_lag.labels(self._service, self.name, topic, str(partition)).set(
                lag
            )

    async def process_batch(self, consumer: Consumer, records: Sequence[Record]) -> bool:
        """Handle records in order; commit offsets of the handled ones. False when the
        infrastructure failed and the rest of the batch was rewound for a later try."""
        committed: dict[tuple[str, int], int] = {}
        rewound: set[tuple[str, int]] = set()
        ok = True
        for record in records:
            partition = (record.topic, record.partition)
            if partition in rewound:
                continue
            try:
                await self.handle(record)
            except InfrastructureDown as exc:
                log.warning(
                    "consumer.infrastructure_down",
                    consumer=self.name,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=safe_error_text(exc.__cause__ or exc),
                )
                await consumer.seek(record.topic, record.partition, record.offset)
                rewound.add(partition)
                ok = False
                continue
            committed[partition] = record.offset + 1
        try:
            await consumer.commit(committed)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The effects are recorded in processed_event: a redelivery will be a no-op.
            log.warning("consumer.commit_failed", consumer=self.name, error=safe_error_text(exc))
            return False
        return ok

    async def handle(self, record: Record) -> None:
        try:
            envelope = Envelope.from_message(record.value, record.headers)
        except EnvelopeError as exc:
            await self._dead_letter(record, None, exc, attempts=1)
            return
        handler = self._handlers.get(envelope.type)
        if handler is None:
            self._count(envelope.type, "ignored")
            return
        bound = structlog.contextvars.bound_contextvars(
            consumer=self.name,
            event_id=envelope.id,
            event_type=envelope.type,
            subject=envelope.subject,
            trace_id=trace_id_of(envelope.traceparent),
        )
        token = current_traceparent.set(envelope.traceparent)
        try:
            with bound:
                await self._handle_with_retries(record, envelope, handler)
        finally:
            current_traceparent.reset(token)

    async def _handle_with_retries(
        self, record: Record, envelope: Envelope, handler: Handler
    ) -> None:
        last_error: BaseException | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                outcome = await self._apply_once(envelope, handler)
            except Exception as exc:
                if is_outage(exc):
                    # The database or the bus, not the message: never dead-letter for that.
                    raise InfrastructureDown() from exc
                last_error = exc
                log.warning("consumer.handler_failed", attempt=attempt, error=safe_error_text(exc))
                if attempt < self._max_attempts:
                    await asyncio.sleep(self._retry_backoff_s * attempt)
                continue
            self._count(envelope.type, outcome)
            if outcome == "applied" and envelope.type in CATALOGUE:
                delay = (utcnow() - envelope.time).total_seconds()
                self._metrics.event_lag_seconds.labels(
                    self._service, self.name, envelope.type
                ).observe(max(delay, 0.0))
            return
        assert last_error is not None
        await self._dead_letter(record, envelope, last_error, attempts=self._max_attempts)

    async def _apply_once(self, envelope: Envelope, handler: Handler) -> str:
        processed = self._infra.processed_event
        try:
            async with session_scope(self._session_factory) as session:
                seen = await session.scalar(
                    select(func.count())
                    .select_from(processed)
                    .where(processed.c.consumer == self.name, processed.c.event_id == envelope.id)
                )
                if seen:
                    return "duplicate"
                erased = self._infra.erased_subject
                if envelope.subject and await session.scalar(
                    select(func.count())
                    .select_from(erased)
                    .where(erased.c.subject == envelope.subject)
                ):
                    outcome = "erased"  # an event of an erased lead: nothing to store
                else:
                    outcome = "applied"
                    await handler(session, envelope)
                await session.execute(
                    insert(processed).values(
                        consumer=self.name,
                        event_id=envelope.id,
                        event_type=envelope.type,
                        processed_at=utcnow(),
                    )
                )
        except IntegrityError:
            # A concurrent delivery of the same event won the race: that is the one effect.
            if await self._already_processed(envelope.id):
                return "duplicate"
            raise
        return outcome

    async def _already_processed(self, event_id: str) -> bool:
        processed = self._infra.processed_event
        async with self._session_factory() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(processed)
                .where(processed.c.consumer == self.name, processed.c.event_id == event_id)
            )
        return bool(count)

    async def _dead_letter(
        self,
        record: Record,
        envelope: Envelope | None,
        error: BaseException,
        *,
        attempts: int,
    ) -> None:
        error_text = safe_error_text(error)
        headers = [
            *record.headers,
            ("dlq_error", error_text.encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        try:
            await self._bus.publish(
                Topics.dlq(record.topic), key=record.key, value=record.value or b"", headers=headers
            )
            async with session_scope(self._session_factory) as session:
                await session.execute(
                    insert(self._infra.dead_letter).values(
                        consumer=self.name,
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        event_id=envelope.id if envelope else None,
                        event_type=envelope.type if envelope else None,
                        error=error_text,
                        attempts=attempts,
                        created_at=utcnow(),
                    )
                )
        except Exception as exc:
            # Whatever stops the dead letter from being recorded, the record must not be
            # skipped: it is tried again later.
            if is_outage(exc) or isinstance(exc, DBAPIError):
                raise InfrastructureDown() from exc
            raise
        log.error(
            "consumer.dead_lettered",
            consumer=self.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error_text,
        )
        self._count(envelope.type if envelope else "invalid", "dead_lettered")

    def _count(self, event_type: str, outcome: str) -> None:
        # Only catalogue types become label values: a hostile message cannot grow the series.
        event_type = event_type if event_type in CATALOGUE else "unknown"
        self._metrics.events_consumed.labels(self._service, self.name, event_type, outcome).inc()


def build_consumer(
    runtime: Runtime[Any], *, name: str, topics: Sequence[str], handlers: Mapping[str, Handler]
) -> EventConsumer:
    """A consumer wired to a process's runtime and settings (retries, backoff)."""
    settings = runtime.settings
    return EventConsumer(
        service=settings.service_name,
        name=name,
        bus=runtime.bus,
        topics=topics,
        handlers=handlers,
        session_factory=runtime.session_factory,
        infra=runtime.infra,
        metrics=runtime.metrics,
        max_attempts=settings.consumer_max_attempts,
        retry_backoff_s=settings.consumer_retry_backoff_s,
    )
