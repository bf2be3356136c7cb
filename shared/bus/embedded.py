"""Embedded backend: an append-only log in one SQLite file shared by the local processes.

Same semantics as the Kafka backend, scaled down: topics, keys, consumer groups with committed
offsets, at-least-once delivery. Each topic has one partition (0); offsets grow monotonically per
topic (they may skip numbers, as Kafka's may). One process per consumer group is expected, which is
how ``make run`` starts the system.

A poll returns as soon as records arrive: a publish in this process wakes the process's consumers
at once, one in another process within ``_WATCH_INTERVAL_S`` (a watcher reads the file's
``PRAGMA data_version``, microseconds, and queries only when it moved).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiosqlite

from shared.bus.protocol import BusUnavailable, Record, TopicPartition, TopicSpec
from shared.db.wakeup import Signal, SqliteWatcher
from shared.events.envelope import Headers

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_message (
    "offset" INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB,
    headers TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_bus_message_topic_offset ON bus_message (topic, "offset");
CREATE TABLE IF NOT EXISTS bus_topic (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    retention_ms INTEGER
);
CREATE TABLE IF NOT EXISTS bus_consumer_offset (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
"""

_WATCH_INTERVAL_S = 0.05


async def _connect(path: Path) -> aiosqlite.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(path, timeout=30, isolation_level=None)
    await connection.execute("PRAGMA journal_mode=WAL")
    await connection.execute("PRAGMA busy_timeout=30000")
    await connection.execute("PRAGMA synchronous=NORMAL")
    # Erased records are overwritten with zeros, not left in free pages.
    await connection.execute("PRAGMA secure_delete=ON")
    return connection


def _encode_headers(headers: Headers) -> str:
    return json.dumps([[name, value.decode("utf-8", "surrogateescape")] for name, value in headers])


def _decode_headers(text: str) -> Headers:
    return [(name, value.encode("utf-8", "surrogateescape")) for name, value in json.loads(text)]


class EmbeddedBus:
    def __init__(self, path: Path, *, prefix: str = "") -> None:
        self._path = path
        self._prefix = prefix
        self._connection: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self.arrivals = Signal()  # notified when records may have arrived
        self._watchers = 0
        self._watch_task: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        return self._path

    def watch(self) -> None:
        """A consumer started: watch the file for records published by other processes."""
        self._watchers += 1
        if self._watch_task is None:
            self._watch_task = asyncio.create_task(self._watch(), name="embedded-bus-watch")

    def unwatch(self) -> None:
        self._watchers = max(self._watchers - 1, 0)
        if not self._watchers and self._watch_task is not None:
            task, self._watch_task = self._watch_task, None
            task.cancel()

    async def _watch(self) -> None:
        watcher = SqliteWatcher(self._path, ["bus_message"])
        try:
            while True:
                if watcher.changed():
                    self.arrivals.notify()
                await asyncio.sleep(_WATCH_INTERVAL_S)
        finally:
            watcher.close()

    def physical(self, topic: str) -> str:
        return f"{self._prefix}{topic}"

    def logical(self, physical: str) -> str:
        return physical.removeprefix(self._prefix)

    async def start(self) -> None:
        self._connection = await _connect(self._path)
        await self._connection.executescript(_SCHEMA)

    async def stop(self) -> None:
        self._watchers = 0
        self.unwatch()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    def _require(self) -> aiosqlite.Connection:
        if self._connection is None:
            raise BusUnavailable("embedded bus not started")
        return self._connection

    async def publish(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers
    ) -> None:
        await self.publish_many([(topic, key, value, headers)])

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]
    ) -> None:
        connection = self._require()
        now = time.time()
        async with self._lock:
            try:
                await connection.execute("BEGIN IMMEDIATE")
                await connection.executemany(
                    "INSERT INTO bus_message (topic, key, value, headers, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (self.physical(topic), key, value, _encode_headers(headers), now)
                        for topic, key, value, headers in records
                    ],
                )
                await connection.execute("COMMIT")
            except aiosqlite.Error as exc:
                await connection.execute("ROLLBACK")
                raise BusUnavailable(f"embedded bus write failed: {type(exc).__name__}") from exc
        self.arrivals.notify()

    def consumer(
        self, *, group_id: str, topics: Sequence[str], batch_wait_s: float = 0.0
    ) -> EmbeddedConsumer:
        # batch_wait_s is Kafka's fetch tuning: one local process's reads need none.
        return EmbeddedConsumer(self, group_id=group_id, topics=topics)

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        connection = self._require()
        async with self._lock:
            await connection.executemany(
                "INSERT OR IGNORE INTO bus_topic (name, partitions, retention_ms) VALUES (?, 1, ?)",
                [(self.physical(spec.name), spec.retention_ms) for spec in topics],
            )

    async def erase_keys(self, topics: Sequence[str], keys: Sequence[bytes]) -> int:
        if not topics or not keys:
            return 0
        connection = self._require()
        topic_marks = ", ".join("?" for _ in topics)
        key_marks = ", ".join("?" for _ in keys)
        async with self._lock:
            cursor = await connection.execute(
                f"DELETE FROM bus_message WHERE topic IN ({topic_marks}) AND key IN ({key_marks})",
                (*[self.physical(topic) for topic in topics], *keys),
            )
        if cursor.rowcount:
            await self.checkpoint()  # no older copy of the erased records in the -wal file
        return cursor.rowcount

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the bus file and empty the log (waits for readers)."""
        connection = self._require()
        async with self._lock:
            cursor = await connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = await cursor.fetchone()
        if row is not None and row[0]:
            raise BusUnavailable("embedded bus checkpoint busy: readers kept it from completing")

    async def ping(self) -> None:
        try:
            await (await self._require().execute("SELECT 1")).fetchall()
        except aiosqlite.Error as exc:
            raise BusUnavailable(f"embedded bus unreadable: {type(exc).__name__}") from exc


class EmbeddedConsumer:
    def __init__(self, bus: EmbeddedBus, *, group_id: str, topics: Sequence[str]) -> None:
        self._bus = bus
        self._group_id = group_id
        self._topics = [bus.physical(topic) for topic in topics]
        self._positions: dict[str, int] = {}
        self._connection: aiosqlite.Connection | None = None

    async def start(self) -> None:
        self._connection = await _connect(self._bus.path)
        await self._connection.executescript(_SCHEMA)
        for topic in self._topics:
            cursor = await self._connection.execute(
                "SELECT next_offset FROM bus_consumer_offset"
                " WHERE group_id = ? AND topic = ? AND partition = 0",
                (self._group_id, topic),
            )
            row = await cursor.fetchone()
            self._positions[topic] = int(row[0]) if row else 0
        self._bus.watch()

    async def stop(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            self._bus.unwatch()
            await connection.close()

    def _require(self) -> aiosqlite.Connection:
        if self._connection is None:
            raise RuntimeError("consumer not started")
        return self._connection

    async def poll(self, *, timeout_s: float, max_records: int) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        arrivals = self._bus.arrivals
        while True:
            seen = arrivals.generation
            records = await self._fetch(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            await arrivals.wait(seen, remaining)

    async def _fetch(self, max_records: int) -> list[Record]:
        clauses = " OR ".join('(topic = ? AND "offset" >= ?)' for _ in self._topics)
        parameters: list[object] = []
        for topic in self._topics:
            parameters += [topic, self._positions[topic]]
        cursor = await self._require().execute(
            f'SELECT "offset", topic, key, value, headers FROM bus_message WHERE {clauses}'
            ' ORDER BY "offset" LIMIT ?',
            (*parameters, max_records),
        )
        records = []
        for offset, topic, key, value, headers in await cursor.fetchall():
            self._positions[topic] = offset + 1
            records.append(
                Record(
                    topic=self._bus.logical(topic),
                    partition=0,
                    offset=offset,
                    key=key,
                    value=value,
                    headers=_decode_headers(headers),
                )
            )
        return records

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        await self._require().executemany(
            "INSERT INTO bus_consumer_offset (group_id, topic, partition, next_offset)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (group_id, topic, partition)"
            " DO UPDATE SET next_offset = excluded.next_offset",
            [
                (self._group_id, self._bus.physical(topic), partition, offset)
                for (topic, partition), offset in offsets.items()
            ],
        )

    async def lag(self) -> dict[TopicPartition, int]:
        lags: dict[TopicPartition, int] = {}
        for topic, position in self._positions.items():
            cursor = await self._require().execute(
                'SELECT COUNT(*) FROM bus_message WHERE topic = ? AND "offset" >= ?',
                (topic, position),
            )
            row = await cursor.fetchone()
            lags[(self._bus.logical(topic), 0)] = int(row[0]) if row else 0
        return lags

    async def seek(self, topic: str, partition: int, offset: int) -> None:
        self._positions[self._bus.physical(topic)] = offset

    def assigned(self) -> int:
        return len(self._topics)  # one partition per topic, one process per group
