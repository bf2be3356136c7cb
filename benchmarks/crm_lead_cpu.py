"""CPU per lead of crm's worker handlers of a lead's events (the client and its timeline, the
SLA fact), in process on PostgreSQL: a lead's receipt and its nine usual later events
(``tests/crm/test_statements_per_lead.py``), each in its own transaction as a polled batch of
one is (what the worker mostly sees at 20 leads/s). The consumer's own bookkeeping is not in
it. Reported: the CPU time (``time.process_time``) per lead, median, mean and best over the
leads; Python calls per lead (``sys.setprofile``, one lead more: a count the machine's load does
not blur); statements per lead.

    .venv/bin/python -m benchmarks.crm_lead_cpu [leads]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks.cpu_probe import counted_calls
from crm.sla.consumer import sla_handlers
from crm.worker import client_handlers
from shared.consumer import Handler, merge_handlers
from shared.db.session import session_scope
from shared.events import Envelope
from tests.crm.conftest import CrmFactory
from tests.crm.test_statements_per_lead import calendar, life, received, worker_runtime
from tests.support.infra import create_database, drop_database


async def _lead(handlers: dict[str, Handler], runtime: Any, events: list[Envelope]) -> None:
    for envelope in events:
        async with session_scope(runtime.session_factory) as session:
            await handlers[envelope.type](session, envelope)


async def measure(leads: int) -> str:
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with worker_runtime(CrmFactory(url, Path(folder))) as runtime:
                handlers = merge_handlers(client_handlers(runtime), sla_handlers(runtime))
                start = runtime.clock().replace(microsecond=0) - timedelta(hours=2)
                async with session_scope(runtime.session_factory) as session:
                    at = calendar(start - timedelta(days=1))
                    await handlers[at.type](session, at)
                seen: list[Any] = []
                event.listen(
                    runtime.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a)
                )

                def life_of() -> list[Envelope]:
                    lead_id = str(uuid.uuid4())
                    return [received(lead_id, start), *life(lead_id, start)]

                cpu_ms: list[float] = []
                for index in range(leads + 10):  # the first 10: connections opened, caches warm
                    events = life_of()
                    seen.clear()
                    began = time.process_time()
                    await _lead(handlers, runtime, events)
                    if index >= 10:
                        cpu_ms.append((time.process_time() - began) * 1000)
                statements = len([a for a in seen if a[2].strip() not in ("BEGIN", "COMMIT")])
                with counted_calls() as calls:
                    await _lead(handlers, runtime, life_of())
        return (
            f"lead (10 events, a transaction each): CPU median {statistics.median(cpu_ms):.2f} "
            f"ms, mean {statistics.fmean(cpu_ms):.2f} ms, best {min(cpu_ms):.2f} ms ({leads} "
            f"leads); Python calls {calls[0]}; statements {statements} (without BEGIN/COMMIT)"
        )
    finally:
        await drop_database(url)


def main() -> None:
    leads = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    sys.stdout.write(asyncio.run(measure(leads)) + "\n")


if __name__ == "__main__":
    main()
