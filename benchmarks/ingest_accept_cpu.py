"""CPU per lead of ingest's JSON intake, in process on PostgreSQL: the body of ``POST /v1/leads``
parsed and validated, its lead row and ``lead.received.v1`` event built, written by the group
commit, and the answer serialised (``ingest.leads.router._accept_json``: what the direct route
does after authentication; no HTTP server). Batches of 1 (a lone lead: what the API mostly sees
at 20 leads/s) and of 16 concurrent leads (one group-commit statement). Reported: the CPU time
(``time.process_time``) per lead, median, mean and best over the batches; Python calls per lead
(``sys.setprofile``, one batch more: a count the machine's load does not blur, unlike the CPU
time of a shared 2-core machine); statements per batch.

    .venv/bin/python -m benchmarks.ingest_accept_cpu [leads per size] [sizes, e.g. 1,16]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event

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
    size: int
    cpu_ms: list[float]
    statements: int
    calls: float = 0.0

    def line(self) -> str:
        return (
            f"batch {self.size:>2}: CPU per lead median {statistics.median(self.cpu_ms):.3f} ms, "
            f"mean {statistics.fmean(self.cpu_ms):.3f} ms, best {min(self.cpu_ms):.3f} ms "
            f"({len(self.cpu_ms)} batches); Python calls per lead {self.calls:.0f}; "
            f"statements per batch {self.statements}"
        )


async def measure(leads: int, sizes: list[int]) -> list[Figures]:
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
                seen: list[Any] = []
                event.listen(
                    runtime.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a)
                )
                writer = runtime.component(LeadGroupCommit)
                run = uuid.uuid4().hex[:8]
                figures = []
                for size in sizes:
                    result = Figures(size, [], 0)
                    # A few batches first: connections opened, caches warm.
                    for round_ in range(max(leads // size, 3) + 5):
                        bodies = [
                            _body(run, size * 100_000 + round_ * size + i) for i in range(size)
                        ]
                        needs = JsonIntake(runtime, settings, writer, runtime.clock())
                        seen.clear()
                        start = time.process_time()
                        await asyncio.gather(*(_accept_json(needs, body) for body in bodies))
                        elapsed = time.process_time() - start
                        if round_ >= 5:
                            result.cpu_ms.append(elapsed * 1000 / size)
                            result.statements = len(seen)
                    bodies = [_body(run, size * 100_000 - 1 - i) for i in range(size)]
                    needs = JsonIntake(runtime, settings, writer, runtime.clock())
                    with counted_calls() as calls:
                        await asyncio.gather(*(_accept_json(needs, body) for body in bodies))
                    result.calls = calls[0] / size
                    figures.append(result)
                return figures
    finally:
        await drop_database(url)


def main() -> None:
    leads = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    sizes = [int(size) for size in (sys.argv[2] if len(sys.argv) > 2 else "1,16").split(",")]
    for figures in asyncio.run(measure(leads, sizes)):
        sys.stdout.write(figures.line() + "\n")


if __name__ == "__main__":
    main()
