"""CPU per relayed event of the outbox relay, in process on PostgreSQL and the running Kafka: the
relay's ``run`` loop (woken by the commits that stage events) publishes ingest events to Kafka.

Two patterns: one event per wake (a lead at a time, the pipeline's 20 leads/s) and batches of 50
(one commit staging 50 events). The CPU time (``time.process_time``) of the whole process is
measured from the first staging to the last acknowledgement; the staging's own CPU (measured
around each unit of work that stages) is taken out, what is left is the relay's (its queries, the
producer's sends and acks, the event loop's wake-ups). Also the database round trips per wake.

    .venv/bin/python -m benchmarks.outbox_relay_cpu [rounds] [baseline tree]

Given another tree (e.g. main's: ``git archive main shared | tar -x -C /tmp/main``), its relay
(``shared/outbox.py``, ``shared/outbox_postgres.py``, ``shared/bus/kafka.py``'s bus and
``shared/db/wakeup.py``'s signal; their other imports are this tree's) is timed too, in the same
process, the two relays taking turns unit of work by unit of work (the one whose turn it is not
sleeps: its signal is not notified), and the median of the rounds' differences is reported.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

from benchmarks.cpu_probe import load_module
from ingest.bootstrap import SERVICE as INGEST
from shared import outbox as current_outbox, outbox_postgres as current_outbox_postgres
from shared.bus import kafka as current_kafka
from shared.bus.protocol import TopicSpec
from shared.db import create_engine, make_session_factory, session_scope, wakeup as current_wakeup
from shared.db.session import SessionFactory, wakeups_of
from shared.db.wakeup import OUTBOX
from shared.event_loop import run
from shared.events.catalogue import spec_for
from shared.events.privacy import ExportProvidedV1
from shared.metrics import ServiceMetrics
from shared.outbox import event_source, stage
from tests.support.harness import migrate, settings_for
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database

EVENT_TYPE = "privacy.export-provided.v1"
SINGLE_EVENTS = 200
BATCHES = 10
BATCH = 50


@dataclass(frozen=True)
class Version:
    """A relay's modules: this tree's, or another tree's (``baseline``)."""

    outbox: ModuleType
    outbox_postgres: ModuleType
    kafka: ModuleType
    wakeup: ModuleType


CURRENT = Version(current_outbox, current_outbox_postgres, current_kafka, current_wakeup)


def baseline(root: str) -> Version:
    """The relay's modules of another tree, wired to each other (their other imports are this
    tree's)."""
    shared = Path(root) / "shared"
    wakeup = load_module("baseline_wakeup", shared / "db" / "wakeup.py")
    kafka = load_module("baseline_kafka", shared / "bus" / "kafka.py")
    outbox_postgres = load_module("baseline_outbox_postgres", shared / "outbox_postgres.py")
    outbox = load_module("baseline_outbox", shared / "outbox.py")
    outbox.PostgresOutbox = outbox_postgres.PostgresOutbox  # type: ignore[attr-defined]
    outbox.Signal = wakeup.Signal  # type: ignore[attr-defined]
    return Version(outbox, outbox_postgres, kafka, wakeup)


class Tally:
    """Says when ``target`` events have been published *and* deleted (the relay counts them
    once its batch is done: the lock is released, the other relay may take its turn)."""

    def __init__(self) -> None:
        self.acked = 0
        self.wakes = 0
        self.target = 0
        self.reached = asyncio.Event()

    def counting(self, relay: Any) -> None:
        published = relay._count_published

        def count(event_types: Sequence[str]) -> None:
            published(event_types)
            self.wakes += 1
            self.acked += len(event_types)
            if self.acked >= self.target:
                self.reached.set()

        relay._count_published = count

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


async def _unit(sessions: SessionFactory, tally: Tally, per_unit: int) -> float:
    """One unit of work staging ``per_unit`` events, until the relay has published them: the
    relay's CPU seconds (the process's, the staging's own taken out)."""
    tally.wait_for(tally.acked + per_unit)
    start = time.process_time()
    staging = await _stage(sessions, per_unit)
    await asyncio.wait_for(tally.reached.wait(), 30)
    return time.process_time() - start - staging


async def _pattern(
    sessions: SessionFactory,
    tallies: dict[str, Tally],
    turn: Callable[[str], None],
    units: int,
    per_unit: int,
) -> dict[str, tuple[float, float]]:
    """Per version: (relay CPU seconds per event, round trips per wake) over ``units`` units of
    work each, the versions taking turns unit by unit (the same load for each)."""
    spent = dict.fromkeys(tallies, 0.0)
    trips = dict.fromkeys(tallies, 0)
    for tally in tallies.values():
        tally.reset()
    with round_trips() as counted:
        for _ in range(units):
            for name, tally in tallies.items():
                turn(name)
                before = counted[0]
                spent[name] += await _unit(sessions, tally, per_unit)
                # The staging unit of work ran through the same asyncpg calls (BEGIN, an INSERT
                # per event, COMMIT): taken out like its CPU.
                trips[name] += counted[0] - before - (per_unit + 2)
    return {
        name: (spent[name] / (units * per_unit), trips[name] / max(tally.wakes, 1))
        for name, tally in tallies.items()
    }


Results = dict[str, dict[str, list[tuple[float, float]]]]
PATTERNS = ("one event per wake", "batches of 50")


async def measure(rounds: int, versions: dict[str, Version] | None = None) -> Results:
    """Per version and pattern, per round: (relay CPU seconds per event, round trips per
    wake)."""
    versions = versions or {"current": CURRENT}
    url = await create_database()
    await migrate(settings_for("ingest", database_url=url, bus="embedded"))
    engine = create_engine(url)
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    buses = {
        name: version.kafka.KafkaBus(KAFKA_BOOTSTRAP, prefix=prefix, client_id=f"relay-{name}")
        for name, version in versions.items()
    }
    tallies = {name: Tally() for name in versions}
    results: Results = {name: {pattern: [] for pattern in PATTERNS} for name in versions}
    stop = asyncio.Event()
    relaying = []
    try:
        await next(iter(buses.values())).ensure_topics([TopicSpec(spec_for(EVENT_TYPE).topic, 1)])
        sessions = make_session_factory(engine)
        wakeups = wakeups_of(sessions)
        signals = {name: version.wakeup.Signal() for name, version in versions.items()}
        for name, version in versions.items():
            relay = version.outbox.OutboxRelay(
                service="ingest",
                session_factory=sessions,
                table=INGEST.infra.outbox_event,
                bus=buses[name],
                metrics=ServiceMetrics(f"ingest_{name}"),
                # No fallback poll: the relay whose turn it is not sleeps.
                poll_interval_s=3600.0,
                wakeup=signals[name],
                gauge_interval_s=3600.0,
            )
            tallies[name].counting(relay)
            relaying.append(asyncio.create_task(relay.run(stop)))

        def turn(name: str) -> None:
            wakeups._signals[OUTBOX] = signals[name]  # the staging commits wake this relay

        # Warm-up: producers started, statements prepared.
        await _pattern(sessions, tallies, turn, 20, 1)
        await _pattern(sessions, tallies, turn, 2, BATCH)
        for _ in range(rounds):
            for pattern, (units, per_unit) in zip(
                PATTERNS, ((SINGLE_EVENTS, 1), (BATCHES, BATCH)), strict=True
            ):
                for name, result in (
                    await _pattern(sessions, tallies, turn, units, per_unit)
                ).items():
                    results[name][pattern].append(result)
        stop.set()
        await asyncio.gather(*relaying)
    finally:
        stop.set()
        for task in relaying:
            task.cancel()
        for bus in buses.values():
            await bus.stop()
        await engine.dispose()
        await drop_database(url)
    return results


def _report(results: Results, out: Callable[[str], None]) -> None:
    for version, patterns in results.items():
        for name, runs in patterns.items():
            cpu = [run[0] * 1e6 for run in runs]
            trips = [run[1] for run in runs]
            out(
                f"{version:>8} {name:20s} relay CPU per event: median "
                f"{statistics.median(cpu):7.1f} µs (min {min(cpu):7.1f}, max {max(cpu):7.1f}, "
                f"runs {', '.join(f'{c:.0f}' for c in cpu)}); "
                f"round trips per wake: {statistics.median(trips):.2f}"
            )
    if "baseline" in results:
        for name in PATTERNS:
            saved = [
                (before[0] - after[0]) * 1e6
                for before, after in zip(
                    results["baseline"][name], results["current"][name], strict=True
                )
            ]
            out(
                f"{name:20s}: current saves {statistics.median(saved):.1f} µs per event "
                f"(median of the rounds' differences; {sum(x > 0 for x in saved)} of "
                f"{len(saved)} rounds saved; range {min(saved):.1f} to {max(saved):.1f})"
            )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    versions = {"current": CURRENT}
    if len(sys.argv) > 2:
        versions = {"baseline": baseline(sys.argv[2]), **versions}
    _report(run(measure(rounds, versions)), print)


if __name__ == "__main__":
    main()
