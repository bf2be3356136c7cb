"""Idempotent event consumer with bounded retries and a dead-letter queue.

A polled batch is handled with a constant number of database round trips, whatever its size:

1. records of event types this consumer does not handle are skipped from their ``ce_type``
   header, before their body is decoded (their offsets are still committed), and events a
   ``Selective`` handler does not want (an e-mail where it handles SMS) once decoded: neither
   opens a transaction;
2. in one transaction: the batch's events are *claimed* (their ``processed_event`` rows inserted
   at once, ``ON CONFLICT DO NOTHING``: the rows not inserted were processed already) and the
   leads erased here looked up, in one statement on PostgreSQL; the handlers of the new events
   run; one commit records the effects and the claims together (exactly-once effect over
   at-least-once delivery);
3. offsets are committed to the bus only after that transaction, and at most every second while
   records keep coming (at once when the consumer goes idle, and when it stops): an offset
   commit is a broker round trip, and what a restart or a rebalance reads again is found
   processed (no effect).

If anything in the batch fails, the transaction is rolled back and the batch is handled again
one event at a time (``handle``): each event in its own transaction, a failing one retried, then
dead-lettered to ``<topic>.dlq``, the others applied once. A record that is not a valid
CloudEvent goes to the DLQ at once. When the database or the bus itself is down, nothing is
skipped: the consumer rewinds and tries again later. A transaction PostgreSQL gave up for a
concurrent one (serialization failure, deadlock victim: ``shared.outage.is_contention``) is no
fault of the event either: it is retried, and if it keeps losing, rewound like an outage, never
dead-lettered.

Two replicas cannot both apply an event: the second claim of an event waits for the first
transaction holding it (a unique key) and then finds it claimed, or, one event at a time, its
insert fails and the event is found processed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.aio import sleep_or_stop
from shared.bus.protocol import Bus, BusUnavailable, Consumer, Record
from shared.clock import utcnow
from shared.db.infra import InfraTables
from shared.db.prepared import Prepared
from shared.db.session import SessionFactory, session_scope
from shared.events.catalogue import CATALOGUE, Topics
from shared.events.envelope import Envelope, EnvelopeError
from shared.metrics import ServiceMetrics
from shared.outage import is_contention, is_outage
from shared.redact import safe_error_text
from shared.runtime import Runtime
from shared.tracing import current_traceparent, trace_id_of

log = structlog.get_logger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]


@dataclass(frozen=True)
class Selective:
    """A handler for only some events of its type, told from the event alone (``wants``): the
    others are ignored like a type not handled, without a transaction: no claim to record for
    an event that changes nothing."""

    handler: Handler
    wants: Callable[[Envelope], bool]

    async def __call__(self, session: AsyncSession, envelope: Envelope) -> None:
        await self.handler(session, envelope)


def _unwanted(handler: Handler, envelope: Envelope) -> bool:
    return isinstance(handler, Selective) and not handler.wants(envelope)


_MAX_PAUSE_S = 5.0
_POLL_TIMEOUT_S = 1.0  # a poll returns as soon as records arrive; this bounds the stop check
# (and is how often an idle consumer wakes: one wake-up a second per consumer, as aiokafka's)
_MAX_RECORDS = 100
_LAG_INTERVAL_S = 15.0  # the lag gauges are a monitoring figure, not worth a look per poll
_COMMIT_INTERVAL_S = 1.0
# How long a busy stream's records may gather before a fetch (a quiet stream's first record is
# fetched at once: shared.bus.kafka). Off the leads' critical path (crm's records, ingest's
# conversations): a few tenths of a second nobody reads sooner. On it: a few hundredths, which
# at 20 leads/s still turns one fetch and one transaction per event into one per ten.
PATIENT_BATCH_WAIT_S = 0.5
BRISK_BATCH_WAIT_S = 0.05


class InfrastructureDown(Exception):
    """The database or bus failed; the record must be retried later, not dead-lettered."""


@dataclass(frozen=True)
class _Item:
    """A record of a handled type, decoded."""

    record: Record
    envelope: Envelope
    handler: Handler


def header(record: Record, name: str) -> bytes | None:
    for key, value in record.headers:
        if key == name:
            return value
    return None


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
        lag_interval_s: float = _LAG_INTERVAL_S,
        commit_interval_s: float = _COMMIT_INTERVAL_S,
        batch_wait_s: float = 0.0,
    ) -> None:
        self._service = service
        self.name = name
        self._bus = bus
        self._topics = list(topics)
        self._handlers = dict(handlers)
        self._handled_types = frozenset(event_type.encode() for event_type in handlers)
        self._session_factory = session_factory
        self._infra = infra
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._retry_backoff_s = retry_backoff_s
        self._lag_interval_s = lag_interval_s
        self._commit_interval_s = commit_interval_s
        self._batch_wait_s = batch_wait_s
        self._claims = _Claims(infra, name)
        # The metrics' children by label values, looked up once (``labels`` costs more than
        # the count itself); bounded: catalogue types and "unknown" only.
        self._consumed: dict[tuple[str, str], Any] = {}
        self._lags: dict[str, Any] = {}

    @property
    def topics(self) -> list[str]:
        """The topics this consumer (one consumer group) reads."""
        return list(self._topics)

    async def run(self, stop: asyncio.Event) -> None:
        pause = self._retry_backoff_s
        while not stop.is_set():
            consumer = self._bus.consumer(
                group_id=self.name, topics=self._topics, batch_wait_s=self._batch_wait_s
            )
            try:
                await consumer.start()
            except BusUnavailable as exc:
                log.warning("consumer.start_failed", consumer=self.name, error=safe_error_text(exc))
                await sleep_or_stop(stop, pause)
                pause = min(pause * 2, _MAX_PAUSE_S)
                continue
            next_lag = time.monotonic()
            partitions = self._metrics.consumer_partitions.labels(self._service, self.name)
            assigned = -1
            handled: dict[tuple[str, int], int] = {}  # offsets handled, not yet committed
            next_commit = time.monotonic() + self._commit_interval_s
            try:
                while not stop.is_set():
                    records = await consumer.poll(
                        timeout_s=_POLL_TIMEOUT_S, max_records=_MAX_RECORDS
                    )
                    if consumer.assigned() != assigned:  # a rebalance moved partitions
                        assigned = consumer.assigned()
                        partitions.set(assigned)
                    if time.monotonic() >= next_lag:
                        next_lag = time.monotonic() + self._lag_interval_s
                        await self._observe_lag(consumer)
                    if records:
                        offsets, ok = await self.handle_batch(consumer, records)
                        handled.update(offsets)
                        if not ok:
                            await sleep_or_stop(stop, pause)
                            pause = min(pause * 2, _MAX_PAUSE_S)
                        else:
                            pause = self._retry_backoff_s
                    # Offsets go to the bus at most every commit interval (and when idle, and at
                    # the end): a commit is a broker round trip, and what a restart or a
                    # rebalance reads again meanwhile is recorded as processed (no effect).
                    if handled and (not records or time.monotonic() >= next_commit):
                        if await self._commit(consumer, handled):
                            handled = {}
                        next_commit = time.monotonic() + self._commit_interval_s
            finally:
                partitions.set(0)
                if handled:
                    await self._commit(consumer, handled)
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

    def _handles(self, record: Record) -> bool:
        """False when the ``ce_type`` header names a type this consumer does not handle (the
        body is not even decoded); a record without one is decoded (and dead-lettered)."""
        event_type = header(record, "ce_type")
        return event_type is None or event_type in self._handled_types

    async def process_batch(self, consumer: Consumer, records: Sequence[Record]) -> bool:
        """Handle records in order and commit the offsets of the handled ones. False when the
        infrastructure failed and (part of) the batch was rewound for a later try."""
        offsets, ok = await self.handle_batch(consumer, records)
        return await self._commit(consumer, offsets) and ok

    async def handle_batch(
        self, consumer: Consumer, records: Sequence[Record]
    ) -> tuple[dict[tuple[str, int], int], bool]:
        """Handle records in order: the next offset of each partition handled (to commit), and
        False when the infrastructure failed and (part of) the batch was rewound."""
        items = self._decode(records)
        if items is not None:
            try:
                await self._apply_batch(items)
            except Exception as exc:
                if is_outage(exc):
                    await self._rewind_all(consumer, records, exc)
                    return {}, False
                # Roll back to one event at a time: retries and the DLQ for the bad one.
                log.warning(
                    "consumer.batch_failed",
                    consumer=self.name,
                    events=len(items),
                    error=safe_error_text(exc),
                )
            else:
                return _next_offsets(records), True
        return await self._one_at_a_time(consumer, records)

    def _decode(self, records: Sequence[Record]) -> list[_Item] | None:
        """The records of handled types, decoded; None when one is not a valid CloudEvent (the
        one-at-a-time path dead-letters it)."""
        items = []
        for record in records:
            if not self._handles(record):
                self._count_ignored(record)
                continue
            try:
                envelope = Envelope.from_message(record.value, record.headers)
            except EnvelopeError:
                return None
            handler = self._handlers.get(envelope.type)
            if handler is None or _unwanted(handler, envelope):
                self._count(envelope.type, "ignored")
                continue
            items.append(_Item(record, envelope, handler))
        return items

    async def _apply_batch(self, items: Sequence[_Item]) -> None:
        """Claim the events, run the handlers of the new ones and commit, all in one
        transaction; count the outcomes once it has committed."""
        outcomes: list[tuple[Envelope, str]] = []
        firsts: dict[str, _Item] = {}
        for item in items:
            if item.envelope.id in firsts:
                outcomes.append((item.envelope, "duplicate"))  # twice in this very batch
            else:
                firsts[item.envelope.id] = item
        if firsts:
            async with session_scope(self._session_factory) as session:
                claimed, erased = await self._claims.claim(
                    session, [item.envelope for item in firsts.values()], utcnow()
                )
                for item in firsts.values():
                    envelope = item.envelope
                    if envelope.id not in claimed:
                        outcomes.append((envelope, "duplicate"))
                    elif envelope.subject is not None and envelope.subject in erased:
                        outcomes.append((envelope, "erased"))  # an erased lead: nothing stored
                    else:
                        await self._run_handler(session, item.handler, envelope)
                        outcomes.append((envelope, "applied"))
        now = utcnow()
        for envelope, outcome in outcomes:
            self._observe(envelope, outcome, now)

    async def _run_handler(
        self, session: AsyncSession, handler: Handler, envelope: Envelope
    ) -> None:
        # The events the handler stages continue the trace of the event handled.
        token = current_traceparent.set(envelope.traceparent)
        # Bound and reset by their tokens: what ``bound_contextvars`` does, without reading
        # the whole context first.
        bound = structlog.contextvars.bind_contextvars(**self._log_context(envelope))
        try:
            await handler(session, envelope)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            current_traceparent.reset(token)

    def _log_context(self, envelope: Envelope) -> dict[str, Any]:
        return {
            "consumer": self.name,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "subject": envelope.subject,
            "trace_id": trace_id_of(envelope.traceparent),
        }

    async def _rewind_all(
        self, consumer: Consumer, records: Sequence[Record], exc: BaseException
    ) -> None:
        """The database or the bus failed under the batch: read it all again later."""
        log.warning(
            "consumer.infrastructure_down",
            consumer=self.name,
            events=len(records),
            error=safe_error_text(exc),
        )
        firsts: dict[tuple[str, int], int] = {}
        for record in records:
            firsts.setdefault((record.topic, record.partition), record.offset)
        for (topic, partition), offset in firsts.items():
            await consumer.seek(topic, partition, offset)

    async def _one_at_a_time(
        self, consumer: Consumer, records: Sequence[Record]
    ) -> tuple[dict[tuple[str, int], int], bool]:
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
        return committed, ok

    async def _commit(self, consumer: Consumer, offsets: dict[tuple[str, int], int]) -> bool:
        try:
            await consumer.commit(offsets)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The effects are recorded in processed_event: a redelivery will be a no-op.
            log.warning("consumer.commit_failed", consumer=self.name, error=safe_error_text(exc))
            return False
        return True

    async def handle(self, record: Record) -> None:
        """One record in its own transaction(s): retries, then the DLQ."""
        if not self._handles(record):
            self._count_ignored(record)
            return
        try:
            envelope = Envelope.from_message(record.value, record.headers)
        except EnvelopeError as exc:
            await self._dead_letter(record, None, exc, attempts=1)
            return
        handler = self._handlers.get(envelope.type)
        if handler is None or _unwanted(handler, envelope):
            self._count(envelope.type, "ignored")
            return
        token = current_traceparent.set(envelope.traceparent)
        bound = structlog.contextvars.bind_contextvars(**self._log_context(envelope))
        try:
            await self._handle_with_retries(record, envelope, handler)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
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
                log.warning(
                    "consumer.contention" if is_contention(exc) else "consumer.handler_failed",
                    attempt=attempt,
                    error=safe_error_text(exc),
                )
                if attempt < self._max_attempts:
                    await asyncio.sleep(self._retry_backoff_s * attempt)
                continue
            self._observe(envelope, outcome)
            return
        assert last_error is not None
        if is_contention(last_error):
            # Lost to concurrent transactions every time: the event is sound; read it again
            # later (rewound like an outage), never dead-lettered.
            raise InfrastructureDown() from last_error
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

    def _observe(self, envelope: Envelope, outcome: str, now: datetime | None = None) -> None:
        self._count(envelope.type, outcome)
        if outcome == "applied" and envelope.type in CATALOGUE:
            delay = ((now or utcnow()) - envelope.time).total_seconds()
            lag = self._lags.get(envelope.type)
            if lag is None:
                lag = self._metrics.event_lag_seconds.labels(
                    self._service, self.name, envelope.type
                )
                self._lags[envelope.type] = lag
            lag.observe(max(delay, 0.0))

    def _count_ignored(self, record: Record) -> None:
        event_type = header(record, "ce_type")
        self._count(event_type.decode("utf-8", "replace") if event_type else "unknown", "ignored")

    def _count(self, event_type: str, outcome: str) -> None:
        # Only catalogue types become label values: a hostile message cannot grow the series.
        event_type = event_type if event_type in CATALOGUE else "unknown"
        counter = self._consumed.get((event_type, outcome))
        if counter is None:
            counter = self._metrics.events_consumed.labels(
                self._service, self.name, event_type, outcome
            )
            self._consumed[event_type, outcome] = counter
        counter.inc()


def _next_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        offsets[(record.topic, record.partition)] = record.offset + 1
    return offsets


class _Claims:
    """The batch's bookkeeping statements, built once per consumer: claim events (insert their
    ``processed_event`` rows, skipping those already there) and find the erased subjects among
    them. PostgreSQL: one statement (one round trip), compiled once (``Prepared``); SQLite: two
    (no network), compiled by the session as before."""

    def __init__(self, infra: InfraTables, consumer: str) -> None:
        self._consumer = consumer
        processed, erased = infra.processed_event, infra.erased_subject
        self._processed = processed
        # Sorted by event id: two replicas claiming overlapping batches lock in the same order.
        self._postgres_statement = text(
            f"WITH erased AS (SELECT subject FROM {erased.name}"
            " WHERE subject = ANY(CAST(:subjects AS VARCHAR[]))),"
            f" claimed AS (INSERT INTO {processed.name}"
            " (consumer, event_id, event_type, processed_at)"
            " SELECT CAST(:consumer AS VARCHAR), e.id, e.type, CAST(:processed_at AS TIMESTAMPTZ)"
            " FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:types AS VARCHAR[])) AS e(id, type)"
            " ORDER BY e.id"
            " ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id)"
            " SELECT 'claimed', event_id FROM claimed"
            " UNION ALL SELECT 'erased', subject FROM erased"
        )
        self._sqlite_claim = (
            sqlite_insert(processed)
            .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
            .returning(processed.c.event_id)
        )
        self._sqlite_erased = select(erased.c.subject).where(
            erased.c.subject.in_(bindparam("subjects", expanding=True))
        )
        self._dialect: str | None = None  # the sessions' dialect, once the first claim saw it
        self._postgres: Prepared | None = None

    def _prepared_for(self, session: AsyncSession) -> Prepared | None:
        """The PostgreSQL claim compiled once for the sessions' dialect (it runs at every
        batch: positional arguments to the driver, no SQLAlchemy compile or ORM execution
        layer); None on SQLite. A consumer's sessions all come from one factory."""
        if self._dialect is None:
            dialect = session.get_bind().dialect
            if dialect.name == "postgresql":
                self._postgres = Prepared.compile(self._postgres_statement, dialect)
            self._dialect = dialect.name
        return self._postgres

    async def claim(
        self, session: AsyncSession, envelopes: Sequence[Envelope], now: datetime
    ) -> tuple[set[str], set[str]]:
        """(ids of the events claimed now, erased subjects among the events')."""
        subjects = sorted({envelope.subject for envelope in envelopes if envelope.subject})
        prepared = self._prepared_for(session)
        if prepared is not None:
            arguments = prepared.arguments_of(
                {
                    "subjects": subjects,
                    "consumer": self._consumer,
                    "processed_at": now,
                    "ids": [envelope.id for envelope in envelopes],
                    "types": [envelope.type for envelope in envelopes],
                }
            )
            rows = (await prepared.execute(session, arguments)).all()
            claimed: set[str] = set()
            erased: set[str] = set()
            for kind, value in rows:
                (claimed if kind == "claimed" else erased).add(value)
            return claimed, erased
        inserted = await session.scalars(
            self._sqlite_claim,
            [
                {
                    "consumer": self._consumer,
                    "event_id": envelope.id,
                    "event_type": envelope.type,
                    "processed_at": now,
                }
                for envelope in sorted(envelopes, key=lambda envelope: envelope.id)
            ],
        )
        claimed = set(inserted.all())
        erased = (
            set((await session.scalars(self._sqlite_erased, {"subjects": subjects})).all())
            if subjects
            else set()
        )
        return claimed, erased


def merge_handlers(*handler_maps: Mapping[str, Handler]) -> dict[str, Handler]:
    """One handler per event type from several sets: a type in more than one runs each set's
    handler in turn, in the same transaction (one pass over the events instead of one consumer
    group per set doing its own bookkeeping)."""
    merged: dict[str, list[Handler]] = {}
    for handlers in handler_maps:
        for event_type, handler in handlers.items():
            merged.setdefault(event_type, []).append(handler)
    return {event_type: _in_turn(handlers) for event_type, handlers in merged.items()}


def _in_turn(handlers: Sequence[Handler]) -> Handler:
    if len(handlers) == 1:
        return handlers[0]

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        for handler in handlers:
            await handler(session, envelope)

    return handle


def build_consumer(
    runtime: Runtime[Any],
    *,
    name: str,
    topics: Sequence[str],
    handlers: Mapping[str, Handler],
    batch_wait_s: float = BRISK_BATCH_WAIT_S,
) -> EventConsumer:
    """A consumer wired to a process's runtime and settings (retries, backoff). Once its topic
    is busy, its events wait up to ``batch_wait_s`` and are handled in batches, at less CPU per
    event; a consumer off the leads' critical path (crm's records, ingest's conversations) sets
    the longer ``PATIENT_BATCH_WAIT_S``."""
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
        lag_interval_s=settings.gauge_interval_s,
        batch_wait_s=batch_wait_s,
    )
