"""Apache Kafka backend (aiokafka). Producer: acks=all, idempotent. Consumers: manual commits.

A producer that failed a publish is replaced: an idempotent producer keeps sequence numbers per
partition, and after a broker restart the old one could stay wedged on
``OutOfOrderSequenceNumber`` for good. Until a publish succeeds again, ``ping`` (``/readyz``)
says the bus cannot publish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError

from shared.bus.protocol import BusUnavailable, Record, TopicPartition, TopicSpec
from shared.events.envelope import Headers

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_PING_TIMEOUT_S = 5.0
_CLOSE_TIMEOUT_S = 30.0
_IDLE_FETCH_WAIT_MS = 5000
_PATIENT_FETCH_MIN_BYTES = 64 * 1024  # ~100 lead events: a full poll (_MAX_RECORDS)
_FETCH_LOOP_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class KafkaAddress:
    """Where a bus's clients connect and how they name topics (shared by producer and
    consumers)."""

    bootstrap_servers: str
    client_id: str
    prefix: str = ""

    def physical(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    def logical(self, physical: str) -> str:
        return physical.removeprefix(self.prefix)


class KafkaBus:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        prefix: str = "",
        client_id: str,
        publish_timeout_s: float = 20.0,
    ) -> None:
        self.address = KafkaAddress(bootstrap_servers, client_id, prefix)
        self._publish_timeout_s = publish_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._publish_failure: str | None = None
        self._closing: set[asyncio.Task[None]] = set()
        # How many producers this bus started: a failed publish makes the next one start anew.
        self.producers_started = 0

    def physical(self, topic: str) -> str:
        return self.address.physical(topic)

    @property
    def publish_failure(self) -> str | None:
        """Why the last publish failed, until one succeeds again (None: publishing works)."""
        return self._publish_failure

    async def start(self) -> None:
        """Connect lazily: a service must start (and accept work) while the broker is down."""

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:  # the usual publish: no lock to take
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self.address.bootstrap_servers,
                client_id=self.address.client_id,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=15_000,
                # No lingering: the relay enqueues its whole batch before it waits for the acks,
                # so a linger only delayed each batch (and woke the sender once more per batch).
                linger_ms=0,
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                await producer.stop()
                raise BusUnavailable(f"kafka unreachable: {type(exc).__name__}") from exc
            self.producers_started += 1
            self._producer = producer
            return producer

    def _replace(self, producer: AIOKafkaProducer) -> None:
        """Forget ``producer`` (the next publish starts a new one) and close it in the
        background: its pending batches are abandoned, the outbox publishes them again."""
        if self._producer is producer:
            self._producer = None
            closing = asyncio.create_task(self._close_quietly(producer))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_quietly(producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), _CLOSE_TIMEOUT_S)
        except Exception as exc:
            log.info("kafka.producer_close_failed", error_type=type(exc).__name__)

    async def publish(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers
    ) -> None:
        await self.publish_many([(topic, key, value, headers)])

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]
    ) -> None:
        try:
            producer = await self._ensure_producer()
        except BusUnavailable as exc:
            self._publish_failure = str(exc)
            raise
        try:
            # A producer whose broker went away retries without end: bounded here (a timeout
            # scope, not wait_for: no task per publish).
            async with asyncio.timeout(self._publish_timeout_s):
                await self._send_all(producer, records)
        except (KafkaError, TimeoutError) as exc:
            self._publish_failure = f"kafka publish failed: {type(exc).__name__}"
            self._replace(producer)
            raise BusUnavailable(self._publish_failure) from exc
        self._publish_failure = None

    async def _send_all(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[tuple[str, bytes | None, bytes, Headers]],
    ) -> None:
        if len(records) == 1:  # the usual wake: one event (no list, no gathering future)
            ((topic, key, value, headers),) = records
            await (await producer.send(self.physical(topic), value, key=key, headers=headers))
            return
        # Enqueue all, then wait: the idempotent producer keeps per-partition order.
        futures = [
            await producer.send(self.physical(topic), value, key=key, headers=headers)
            for topic, key, value, headers in records
        ]
        await asyncio.gather(*futures)

    def consumer(
        self, *, group_id: str, topics: Sequence[str], batch_wait_s: float = 0.0
    ) -> KafkaConsumer:
        return KafkaConsumer(
            self.address, group_id=group_id, topics=topics, batch_wait_s=batch_wait_s
        )

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.address.bootstrap_servers, client_id=self.address.client_id
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [spec for spec in topics if self.physical(spec.name) not in existing]
            await self._warn_if_fewer_partitions(
                admin, [spec for spec in topics if spec not in missing]
            )
            if not missing:
                return
            response = await admin.create_topics(
                [
                    NewTopic(
                        self.physical(spec.name),
                        num_partitions=spec.partitions,
                        replication_factor=1,
                        topic_configs=(
                            {"retention.ms": str(spec.retention_ms)} if spec.retention_ms else {}
                        ),
                    )
                    for spec in missing
                ]
            )
            for name, code, *_ in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise BusUnavailable(f"cannot create topic {name}: error code {code}")
        except KafkaError as exc:
            raise BusUnavailable(f"kafka admin failed: {type(exc).__name__}") from exc
        finally:
            await admin.close()

    async def _warn_if_fewer_partitions(
        self, admin: AIOKafkaAdminClient, topics: Sequence[TopicSpec]
    ) -> None:
        """An existing topic keeps its partitions: adding some would move keys to other
        partitions and break the order of a lead's events (docs/operations.md, Scaling)."""
        if not topics:
            return
        wanted = {self.physical(spec.name): spec.partitions for spec in topics}
        for described in await admin.describe_topics(list(wanted)):
            name, partitions = described.get("topic"), len(described.get("partitions") or [])
            if name in wanted and 0 < partitions < wanted[name]:
                log.warning(
                    "kafka.topic_has_fewer_partitions",
                    topic=name,
                    partitions=partitions,
                    configured=wanted[name],
                )

    async def erase_keys(self, topics: Sequence[str], keys: Sequence[bytes]) -> int:
        # Kafka cannot delete single records of a non-compacted topic: our topics carrying
        # personal data have a bounded retention.ms instead (docs/operations.md).
        return 0

    async def ping(self) -> None:
        if self._publish_failure is not None:
            raise BusUnavailable(f"cannot publish ({self._publish_failure})")
        producer = await self._ensure_producer()
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), _PING_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka not ready: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class _Fetch:
    min_bytes: int
    max_wait_ms: int


# Eager: the broker answers as soon as a record arrives, and the wait only bounds how often an
# idle consumer asks again (the default 500 ms made idle consumers the workers' main cost).
_EAGER = _Fetch(min_bytes=1, max_wait_ms=_IDLE_FETCH_WAIT_MS)


def _held_fetch(batch_wait_s: float) -> _Fetch | None:
    """The fetch of a busy stream: the broker answers when ``_PATIENT_FETCH_MIN_BYTES`` have
    gathered or ``batch_wait_s`` has passed, so a busy topic is fetched a few times a second
    instead of once per record and its batches share their transactions. None: always eager."""
    if batch_wait_s <= 0:
        return None
    return _Fetch(
        min_bytes=_PATIENT_FETCH_MIN_BYTES, max_wait_ms=max(1, round(batch_wait_s * 1000))
    )


class KafkaConsumer:
    """A consumer group member. With ``batch_wait_s`` its fetches follow the stream: eager while
    it is quiet (a lone record arrives at once and an idle consumer asks every 5 s), held for up
    to ``batch_wait_s`` once records flow (one fetch per batch, not per record), eager again once
    a held fetch comes back empty."""

    def __init__(
        self,
        address: KafkaAddress,
        *,
        group_id: str,
        topics: Sequence[str],
        batch_wait_s: float = 0.0,
    ) -> None:
        self._address = address
        self._group_id = group_id
        self._topics = list(topics)
        self._consumer: AIOKafkaConsumer | None = None
        self._held = _held_fetch(batch_wait_s)
        self._holding = False

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            *[self._address.physical(topic) for topic in self._topics],
            bootstrap_servers=self._address.bootstrap_servers,
            client_id=self._address.client_id,
            # Prefixed like the topics: two systems sharing a broker (tests, benchmarks, staging)
            # never join each other's groups.
            group_id=self._address.physical(self._group_id),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_min_bytes=_EAGER.min_bytes,
            fetch_max_wait_ms=_EAGER.max_wait_ms,
            # The background fetch loop wakes on a fetch answer, a consumed batch or a
            # rebalance; this only bounds its sleep otherwise (the default 200 ms woke every
            # idle consumer five times a second).
            consumer_timeout_ms=_FETCH_LOOP_TIMEOUT_MS,
        )
        try:
            await consumer.start()
        except (KafkaError, OSError) as exc:
            await consumer.stop()
            raise BusUnavailable(f"kafka unreachable: {type(exc).__name__}") from exc
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("consumer not started")
        return self._consumer

    async def poll(self, *, timeout_s: float, max_records: int) -> list[Record]:
        if self._holding and self._held is not None:
            # A held fetch answers within its wait: nothing after two waits, the stream is quiet.
            quiet_after_s = min(timeout_s, 2 * self._held.max_wait_ms / 1000)
            records = await self._take(quiet_after_s, max_records)
            if records:
                return records
            self._hold(False)
            timeout_s -= quiet_after_s
            if timeout_s <= 0:
                return []
        records = await self._take(timeout_s, max_records)
        if records and self._held is not None:
            self._hold(True)
        return records

    def _hold(self, holding: bool) -> None:
        """Sets the fetch settings of the next fetch request. aiokafka reads them from its
        fetcher each time it builds one and has no public setter; without that fetcher (another
        aiokafka) the consumer simply stays eager."""
        fetch = self._held if holding and self._held is not None else _EAGER
        fetcher = getattr(self._require(), "_fetcher", None)
        if fetcher is None or not hasattr(fetcher, "_fetch_min_bytes"):
            return
        fetcher._fetch_min_bytes = fetch.min_bytes
        fetcher._fetch_max_wait_ms = fetch.max_wait_ms
        self._holding = holding

    async def _take(self, timeout_s: float, max_records: int) -> list[Record]:
        try:
            batches = await self._require().getmany(
                timeout_ms=int(timeout_s * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise BusUnavailable(f"kafka poll failed: {type(exc).__name__}") from exc
        return [
            Record(
                topic=self._address.logical(message.topic),
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value,
                headers=list(message.headers),
            )
            for messages in batches.values()
            for message in messages
        ]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await self._require().commit(
                {
                    KafkaTopicPartition(self._address.physical(topic), partition): offset
                    for (topic, partition), offset in offsets.items()
                }
            )
        except CommitFailedError:
            # A rebalance moved the partition: the next owner re-reads from the last commit and
            # the processed-event table turns the redelivery into a no-op.
            return
        except KafkaError as exc:
            raise BusUnavailable(f"kafka commit failed: {type(exc).__name__}") from exc

    async def lag(self) -> dict[TopicPartition, int]:
        consumer = self._require()
        lags: dict[TopicPartition, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue  # no fetch answered yet for this partition
            try:
                position = await consumer.position(tp)
            except KafkaError as exc:
                raise BusUnavailable(f"kafka position unknown: {type(exc).__name__}") from exc
            lags[(self._address.logical(tp.topic), tp.partition)] = max(highwater - position, 0)
        return lags

    async def seek(self, topic: str, partition: int, offset: int) -> None:
        self._require().seek(KafkaTopicPartition(self._address.physical(topic), partition), offset)

    def assigned(self) -> int:
        return len(self._require().assignment())
