"""Apache Kafka backend (aiokafka). Producer: acks=all, idempotent. Consumers: manual commits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError

from shared.bus.protocol import BusUnavailable, Record, TopicPartition, TopicSpec
from shared.events.envelope import Headers

_TOPIC_ALREADY_EXISTS = 36
_PING_TIMEOUT_S = 5.0


class KafkaBus:
    def __init__(self, bootstrap_servers: str, *, prefix: str = "", client_id: str) -> None:
        self._bootstrap = bootstrap_servers
        self._prefix = prefix
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    def physical(self, topic: str) -> str:
        return f"{self._prefix}{topic}"

    async def start(self) -> None:
        """Connect lazily: a service must start (and accept work) while the broker is down."""

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=15_000,
                linger_ms=5,
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                await producer.stop()
                raise BusUnavailable(f"kafka unreachable: {type(exc).__name__}") from exc
            self._producer = producer
            return producer

    async def publish(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers
    ) -> None:
        await self.publish_many([(topic, key, value, headers)])

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]
    ) -> None:
        producer = await self._ensure_producer()
        try:
            # Enqueue all, then wait: the idempotent producer keeps per-partition order.
            futures = [
                await producer.send(self.physical(topic), value, key=key, headers=headers)
                for topic, key, value, headers in records
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise BusUnavailable(f"kafka publish failed: {type(exc).__name__}") from exc

    def consumer(self, *, group_id: str, topics: Sequence[str]) -> KafkaConsumer:
        return KafkaConsumer(self, group_id=group_id, topics=topics)

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=self._client_id)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [spec for spec in topics if self.physical(spec.name) not in existing]
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

    async def erase_keys(self, topics: Sequence[str], keys: Sequence[bytes]) -> int:
        # Kafka cannot delete single records of a non-compacted topic: our topics carrying
        # personal data have a bounded retention.ms instead (docs/operations.md).
        return 0

    async def ping(self) -> None:
        producer = await self._ensure_producer()
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), _PING_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka not ready: {type(exc).__name__}") from exc


class KafkaConsumer:
    def __init__(self, bus: KafkaBus, *, group_id: str, topics: Sequence[str]) -> None:
        self._bus = bus
        self._group_id = group_id
        self._topics = list(topics)
        self._consumer: AIOKafkaConsumer | None = None

    def _logical(self, physical: str) -> str:
        return physical.removeprefix(self._bus._prefix)

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            *[self._bus.physical(topic) for topic in self._topics],
            bootstrap_servers=self._bus._bootstrap,
            client_id=self._bus._client_id,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
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
        batches = await self._require().getmany(
            timeout_ms=int(timeout_s * 1000), max_records=max_records
        )
        records = [
            Record(
                topic=self._logical(message.topic),
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value,
                headers=list(message.headers),
            )
            for messages in batches.values()
            for message in messages
        ]
        return records

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await self._require().commit(
                {
                    KafkaTopicPartition(self._bus.physical(topic), partition): offset
                    for (topic, partition), offset in offsets.items()
                }
            )
        except CommitFailedError:
            # A rebalance moved the partition: the next owner re-reads from the last commit and
            # the processed-event table turns the redelivery into a no-op.
            return

    async def lag(self) -> dict[TopicPartition, int]:
        consumer = self._require()
        lags: dict[TopicPartition, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue  # no fetch answered yet for this partition
            position = await consumer.position(tp)
            lags[(self._logical(tp.topic), tp.partition)] = max(highwater - position, 0)
        return lags

    async def seek(self, topic: str, partition: int, offset: int) -> None:
        self._require().seek(KafkaTopicPartition(self._bus.physical(topic), partition), offset)
