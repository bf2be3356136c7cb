"""Client CPU per batch of the idempotent consumer (``shared.consumer.EventConsumer``) on
PostgreSQL, in process: ``handle_batch`` of polled records of new events with a handler that
does nothing, so that what is measured is the consumer's own work (decoding, the transaction,
the claim of the events, the metrics), for batches of 1 and of 10 events. Each round times
``BATCHES`` batches of each size in turn. Reported per size: the CPU time
(``time.process_time``) per batch of the rounds (best, median) and the statements per batch
(BEGIN and COMMIT are two round trips more). Given another version of ``shared/consumer.py``
(e.g. main's), its consumer is timed too, in the same process, taking turns with this one's
batch by batch (the machine's load is then the same for both), and the median of the rounds'
differences is reported. The other consumer's imports are this tree's: to time another
``shared/db/session.py`` too (the batch's ``session_scope``), give it after the consumer:

    .venv/bin/python -m benchmarks.consumer_batch_cpu [rounds] [consumer.py [session.py]]
    git show main:shared/consumer.py > /tmp/main_consumer.py  # e.g.
    git show main:shared/db/session.py > /tmp/main_session.py
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.cpu_probe import load_module
from shared import consumer as current
from shared.bus import Record
from shared.events import Envelope, Topics
from shared.metrics import ServiceMetrics
from tests.support.infra import create_database, drop_database
from tests.support.messaging import MessagingSettings, infra, messaging_harness

SIZES = (1, 10)
BATCHES = 50  # per size and round
_offset = 0


async def noop(session: AsyncSession, envelope: Envelope) -> None:
    """No SQL of its own: the consumer's bookkeeping is what is measured."""


def _records(count: int) -> list[Record]:
    global _offset
    records = []
    for _ in range(count):
        lead_id = str(uuid.uuid4())
        envelope = Envelope(
            source="/vo-leads/ingest",
            type="lead.received.v1",
            subject=lead_id,
            data={"lead_id": lead_id, "label": "bench"},
        )
        records.append(
            Record(
                Topics.LEADS,
                0,
                _offset,
                envelope.to_key(),
                envelope.to_value(),
                envelope.to_headers(),
            )
        )
        _offset += 1
    return records


def _baseline(path: str, session_path: str | None = None) -> Any:
    """The module of another ``shared/consumer.py`` (its imports are this tree's), its batches'
    ``session_scope`` taken from another ``shared/db/session.py`` if given."""
    module = load_module("baseline_consumer", path)
    if session_path is not None:
        session_module = load_module("baseline_session", session_path)
        module.session_scope = session_module.session_scope  # type: ignore[attr-defined]
    return module


# (version, batch size) → (CPU seconds per batch of each round, statements per batch)
Results = dict[tuple[str, int], tuple[list[float], float]]


async def measure(rounds: int, modules: dict[str, Any]) -> Results:
    """Per version and batch size: CPU seconds per batch of each round, statements per batch."""
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    try:
        with TemporaryDirectory() as tmp:
            settings = MessagingSettings(
                database_url=url, bus="embedded", embedded_bus_path=Path(tmp) / "bus.db"
            )
            async with messaging_harness(settings) as harness:
                consumers = {
                    version: module.EventConsumer(
                        service="bench",
                        name=f"bench.{version}",
                        bus=harness.bus,
                        topics=[Topics.LEADS],
                        handlers={"lead.received.v1": noop},
                        session_factory=harness.sessions,
                        infra=infra,
                        metrics=ServiceMetrics(f"bench_{version}"),
                    )
                    for version, module in modules.items()
                }
                reader: Any = None  # only a rewind (an outage) would use it
                statements = 0

                def counted(*_: Any) -> None:
                    nonlocal statements
                    statements += 1

                for consumer in consumers.values():  # warm up: pool, caches, the server's plans
                    for size in SIZES:
                        for _ in range(5):
                            await consumer.handle_batch(reader, _records(size))
                event.listen(harness.engine.sync_engine, "before_cursor_execute", counted)
                cpu: dict[tuple[str, int], list[float]] = {
                    (version, size): [] for version in consumers for size in SIZES
                }
                counts = dict.fromkeys(cpu, 0)
                for _ in range(rounds):
                    for size in SIZES:
                        # The versions take turns batch by batch: the same load for each.
                        batches = {
                            version: [_records(size) for _ in range(BATCHES)]
                            for version in consumers
                        }
                        spent = dict.fromkeys(consumers, 0.0)
                        for n in range(BATCHES):
                            for version, consumer in consumers.items():
                                before = statements
                                start = time.process_time()
                                _, ok = await consumer.handle_batch(reader, batches[version][n])
                                spent[version] += time.process_time() - start
                                assert ok
                                counts[version, size] += statements - before
                        for version in consumers:
                            cpu[version, size].append(spent[version] / BATCHES)
                return {
                    key: (rounds_cpu, counts[key] / (rounds * BATCHES))
                    for key, rounds_cpu in cpu.items()
                }
    finally:
        await drop_database(url)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    modules: dict[str, Any] = {"current": current}
    if len(sys.argv) > 2:
        session = sys.argv[3] if len(sys.argv) > 3 else None
        modules = {"baseline": _baseline(sys.argv[2], session), **modules}
    results = asyncio.run(measure(rounds, modules))
    for (version, size), (cpu, statements) in results.items():
        sys.stdout.write(
            f"{version:>8}, batch of {size:>2}: CPU per batch best {min(cpu) * 1e6:.0f} us, "
            f"median {_median(cpu) * 1e6:.0f} us; {statements:.2f} statements per batch "
            f"({rounds} rounds of {BATCHES} batches)\n"
        )
    if "baseline" in modules:
        for size in SIZES:
            saved = [
                before - after
                for before, after in zip(
                    results["baseline", size][0], results["current", size][0], strict=True
                )
            ]
            sys.stdout.write(
                f"batch of {size:>2}: current saves {_median(saved) * 1e6:.0f} us per batch "
                f"(median of the rounds; {sum(x > 0 for x in saved)} of {rounds} rounds saved)\n"
            )


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


if __name__ == "__main__":
    main()
