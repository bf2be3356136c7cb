"""CPU per lead of ingest's JSON intake, in process on PostgreSQL: the body of ``POST /v1/leads``
parsed and validated, its lead row and ``lead.received.v1`` event built, written by the group
commit, and the answer serialised (``ingest.leads.router._accept_json``: what the direct route
does after authentication; no HTTP server). Batches of 1 (a lone lead: what the API mostly sees
at 20 leads/s) and of 16 concurrent leads (one group-commit statement). Reported: the CPU time
(``time.process_time``) per lead, median, mean and best over the batches; Python calls per lead
(``sys.setprofile``, one batch more: a count the machine's load does not blur, unlike the CPU
time of a shared 2-core machine); statements per batch (through SQLAlchemy or run by the driver
from a statement it prepared).

Given another version of ``services/ingest/ingest/leads/repository.py`` (e.g. main's), its
``LeadBatchWriter`` writes too, in the same process, taking turns with this tree's batch by
batch (the machine's load is then the same for both); its imports are this tree's:

    .venv/bin/python -m benchmarks.ingest_accept_cpu [leads per size] [sizes: 1,16] [repository.py]
    git show main:services/ingest/ingest/leads/repository.py > /tmp/main_repository.py  # e.g.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.bench_ingest import lead_body
from benchmarks.cpu_probe import counted_calls
from ingest.deps import JsonIntake
from ingest.leads.group_commit import LeadGroupCommit
from ingest.leads.router import _accept_json
from ingest.settings import IngestSettings
from tests.support.harness import migrate, run_app, settings_for
from tests.support.infra import create_database, drop_database


def _body(run: str, index: int) -> bytes:
    return orjson.dumps(lead_body(index, run))


@dataclass
class Figures:
    version: str
    size: int
    cpu_ms: list[float]
    statements: int
    calls: float = 0.0

    def line(self) -> str:
        return (
            f"{self.version:>8}, batch {self.size:>2}: CPU per lead median "
            f"{statistics.median(self.cpu_ms):.3f} ms, mean {statistics.fmean(self.cpu_ms):.3f} "
            f"ms, best {min(self.cpu_ms):.3f} ms ({len(self.cpu_ms)} batches); Python calls per "
            f"lead {self.calls:.0f}; statements per batch {self.statements}"
        )


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements sent meanwhile: through SQLAlchemy, or run by the driver from a statement
    it prepared itself (SQLAlchemy's own executions run that way too: counted once)."""
    seen: list[str] = []
    fetch = PreparedStatement.fetch
    through_sqlalchemy = [False]

    async def counted_fetch(self: PreparedStatement, *args: Any, **kwargs: Any) -> Any:
        if not through_sqlalchemy[0]:
            seen.append(self.get_query())
        through_sqlalchemy[0] = False
        return await fetch(self, *args, **kwargs)

    def record(*args: Any) -> None:
        seen.append(str(args[2]))
        through_sqlalchemy[0] = True

    PreparedStatement.fetch = counted_fetch
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        PreparedStatement.fetch = fetch


async def measure(leads: int, sizes: list[int], baseline: Any | None) -> list[Figures]:
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = settings_for(
                "ingest",
                database_url=url,
                bus="embedded",
                embedded_bus_path=Path(folder) / "bus.db",
                log_json=True,
            )
            assert isinstance(settings, IngestSettings)
            await migrate(settings)
            async with run_app(settings) as service:
                runtime = service.app.state.runtime
                writer = runtime.component(LeadGroupCommit)
                writers = {"current": writer._at_once}
                if baseline is not None:
                    other = baseline.LeadBatchWriter(runtime.engine, runtime.outbox.table)
                    writers = {"baseline": other, "current": writer._at_once}
                run = uuid.uuid4().hex[:8]
                figures = []
                index = 0

                def bodies(size: int) -> list[bytes]:
                    nonlocal index
                    index += size
                    return [_body(run, index - i) for i in range(size)]

                try:
                    for size in sizes:
                        results = {version: Figures(version, size, [], 0) for version in writers}
                        # A few batches first: connections opened, caches warm.
                        for round_ in range(max(leads // size, 3) + 5):
                            order = list(writers) if round_ % 2 == 0 else list(writers)[::-1]
                            for version in order:
                                writer._at_once = writers[version]
                                batch = bodies(size)
                                needs = JsonIntake(runtime, settings, writer, runtime.clock())
                                start = time.process_time()
                                await asyncio.gather(*(_accept_json(needs, b) for b in batch))
                                elapsed = time.process_time() - start
                                if round_ >= 5:
                                    results[version].cpu_ms.append(elapsed * 1000 / size)
                        for version, result in results.items():
                            writer._at_once = writers[version]
                            batch = bodies(size)
                            needs = JsonIntake(runtime, settings, writer, runtime.clock())
                            with _statements(runtime.engine) as seen:
                                await asyncio.gather(*(_accept_json(needs, b) for b in batch))
                            result.statements = len(seen)
                            batch = bodies(size)
                            with counted_calls() as calls:
                                await asyncio.gather(*(_accept_json(needs, b) for b in batch))
                            result.calls = calls[0] / size
                            figures.append(result)
                finally:
                    current = writers["current"]
                    for other_writer in writers.values():
                        if other_writer is not current:
                            await other_writer.close()
                    writer._at_once = current
                return figures
    finally:
        await drop_database(url)


def _load(name: str, path: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    leads = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    sizes = [int(size) for size in (sys.argv[2] if len(sys.argv) > 2 else "1,16").split(",")]
    baseline = _load("baseline_repository", sys.argv[3]) if len(sys.argv) > 3 else None
    for figures in asyncio.run(measure(leads, sizes, baseline)):
        sys.stdout.write(figures.line() + "\n")


if __name__ == "__main__":
    main()
