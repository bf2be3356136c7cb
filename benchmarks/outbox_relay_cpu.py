"""CPU per relayed event of the outbox relay, in process on PostgreSQL and the running Kafka: the
relay's ``run`` loop (woken by the commits that stage events) publishes ingest events to Kafka.

Two patterns: one event per wake (a lead at a time, the pipeline's 20 leads/s) and batches of 50
(one commit staging 50 events). The CPU time (``time.process_time``) of the whole process is
measured from the first staging to the last acknowledgement; the staging's own CPU (measured
around each unit of work that stages) is taken out, what is left is the relay's (its queries, the
producer's sends and acks, the event loop's wake-ups). Also the database round trips per wake.

    .venv/bin/python -m benchmarks.outbox_relay_cpu [rounds]

Old vs new in the same minutes: run it once with ``PYTHONPATH=<a copy of main's tree>`` first.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

from ingest.bootstrap import SERVICE as INGEST
from shared.bus.kafka import KafkaBus
from shared.bus.protocol import TopicSpec
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.session import SessionFactory, wakeups_of
from shared.db.wakeup import OUTBOX
from shared.event_loop import run
from shared.events.catalogue import spec_for
from shared.events.envelope import Headers
from shared.events.privacy import ExportProvidedV1
from shared.metrics import ServiceMetrics
from shared.outbox import OutboxRelay, event_source, stage
from tests.support.harness import migrate, settings_for
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database

EVENT_TYPE = "privacy.export-provided.v1"
SINGLE_EVENTS = 200
BATCHES = 10
BATCH = 50


class CountingBus(KafkaBus):
    """The Kafka bus, saying when ``expected`` events have been acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acked = 0
        self.wakes = 0
        self.target = 0
        self.reached = asyncio.Event()

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]
    ) -> None:
        await super().publish_many(records)
        self.wakes += 1
        self.acked += len(records)
        if self.acked >= self.target:
            self.reached.set()

    def reset(self) -> None:
        self.acked, self.wakes = 0, 0

    def wait_for(self, target: int) -> None:
        self.target = target
        self.reached = asyncio.Event()
        if self.acked >= target:
            self.reached.set()


@contextmanager
def round_trips() -> Iterator[list[int]]:
    """Counts asyncpg's round trips: simple queries (BEGIN, COMMIT), executions of a cached or
    prepared statement."""
    counted = [0]
    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        async def counting(*args: Any, **kwargs: Any) -> Any:
            counted[0] += 1
            return await original(*args, **kwargs)

        patched.append((owner, name, original))
        setattr(owner, name, counting)

    wrap(asyncpg.Connection, "execute")
    wrap(asyncpg.Connection, "_do_execute")
    wrap(PreparedStatement, "_PreparedStatement__bind_execute")
    try:
        yield counted
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


async def _stage(sessions: SessionFactory, count: int) -> float:
    """Stages ``count`` events in one unit of work; returns its CPU time."""
    start = time.process_time()
    async with session_scope(sessions) as session:
        for _ in range(count):
            subject = str(uuid.uuid4())
            await stage(
                session,
                INGEST.infra.outbox_event,
                source=event_source("ingest"),
                event_type=EVENT_TYPE,
                subject=subject,
                payload=ExportProvidedV1(
                    request_id=f"export-{subject}",
                    client_id=subject,
                    service="ingest",
                    data={"lead": [{"id": subject}]},
                    provided_at=datetime.now(UTC),
                ),
            )
    return time.process_time() - start


async def _pattern(
    sessions: SessionFactory, bus: CountingBus, units: int, per_unit: int
) -> tuple[float, float]:
    """(relay CPU seconds per event, round trips per wake) over ``units`` units of work."""
    bus.reset()
    staging = 0.0
    with round_trips() as counted:
        start = time.process_time()
        for unit in range(units):
            bus.wait_for((unit + 1) * per_unit)
            staging += await _stage(sessions, per_unit)
            await asyncio.wait_for(bus.reached.wait(), 30)
        total = time.process_time() - start
        # The staging units of work ran through the same asyncpg calls (BEGIN, an INSERT per
        # event, COMMIT): taken out like their CPU.
        relay_trips = counted[0] - (per_unit + 2) * units
    return (total - staging) / (units * per_unit), relay_trips / max(bus.wakes, 1)


async def measure(rounds: int) -> dict[str, list[tuple[float, float]]]:
    url = await create_database()
    await migrate(settings_for("ingest", database_url=url, bus="embedded"))
    engine = create_engine(url)
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    bus = CountingBus(KAFKA_BOOTSTRAP, prefix=prefix, client_id="bench-relay")
    results: dict[str, list[tuple[float, float]]] = {"one event per wake": [], "batches of 50": []}
    stop = asyncio.Event()
    try:
        await bus.ensure_topics([TopicSpec(spec_for(EVENT_TYPE).topic, 1)])
        sessions = make_session_factory(engine)
        relay = OutboxRelay(
            service="ingest",
            session_factory=sessions,
            table=INGEST.infra.outbox_event,
            bus=bus,
            metrics=ServiceMetrics("ingest"),
            wakeup=wakeups_of(sessions).signal(OUTBOX),
            gauge_interval_s=3600.0,
        )
        relaying = asyncio.create_task(relay.run(stop))
        await _pattern(sessions, bus, 20, 1)  # warm-up: producer started, statements prepared
        await _pattern(sessions, bus, 2, BATCH)
        for _ in range(rounds):
            results["one event per wake"].append(await _pattern(sessions, bus, SINGLE_EVENTS, 1))
            results["batches of 50"].append(await _pattern(sessions, bus, BATCHES, BATCH))
        stop.set()
        await relaying
    finally:
        stop.set()
        await bus.stop()
        await engine.dispose()
        await drop_database(url)
    return results


def _report(results: dict[str, list[tuple[float, float]]], out: Callable[[str], None]) -> None:
    for name, runs in results.items():
        cpu = [run[0] * 1e6 for run in runs]
        trips = [run[1] for run in runs]
        out(
            f"{name:20s} relay CPU per event: median {statistics.median(cpu):7.1f} µs "
            f"(min {min(cpu):7.1f}, runs {', '.join(f'{c:.0f}' for c in cpu)}); "
            f"round trips per wake: {statistics.median(trips):.2f}"
        )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    _report(run(measure(rounds)), print)


if __name__ == "__main__":
    main()
