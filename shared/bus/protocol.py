"""Bus interface shared by the Kafka and embedded backends.

Topic names given to and returned by a bus are logical (``vo.leads``); the bus adds the
configured prefix. Offsets follow Kafka's meaning: a commit stores the next offset to read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.events.envelope import Headers
from shared.redact import SafeError

TopicPartition = tuple[str, int]


class BusUnavailable(SafeError):
    """The broker (or the embedded log) cannot be reached right now; try again later."""


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int | None = None


class Consumer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(self, *, timeout_s: float, max_records: int) -> list[Record]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    async def seek(self, topic: str, partition: int, offset: int) -> None: ...

    async def lag(self) -> dict[TopicPartition, int]:
        """Records not yet read per assigned partition (high watermark minus position)."""

    def assigned(self) -> int:
        """How many partitions this member of the group reads now (no round trip)."""


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers
    ) -> None:
        """Return once the record is durably stored; raise BusUnavailable otherwise."""

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]
    ) -> None:
        """Publish in order; return once all are durably stored."""

    def consumer(
        self, *, group_id: str, topics: Sequence[str], batch_wait_s: float = 0.0
    ) -> Consumer:
        """``batch_wait_s`` > 0: once records flow, they may gather for up to that long before
        they are fetched (fewer, larger batches: fewer fetches and fewer transactions per
        event), while a record that comes after a quiet spell is fetched at once; 0: records
        are always fetched as soon as they arrive."""
        ...

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None: ...

    async def ping(self) -> None:
        """Raise BusUnavailable when the bus cannot serve requests."""

    async def erase_keys(self, topics: Sequence[str], keys: Sequence[bytes]) -> int:
        """Delete stored records with these keys (erasure), leaving no copy of them on disk
        (the embedded log zeroes and checkpoints). Returns how many were deleted; a backend that
        cannot delete (Kafka: retention-bounded topics) returns 0."""
