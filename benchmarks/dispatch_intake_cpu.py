"""CPU per routed lead of the dispatch worker's intake, in process on PostgreSQL: batches of 20
qualified leads (in store at two sites, one in four full web; 10 sellers per pool), each batch
handled by the leads consumer's handler in one unit of work and committed, as a polled batch
is; the CPU time (``time.process_time``) of the best batch, per lead, and the statements.

    .venv/bin/python -m benchmarks.dispatch_intake_cpu [batches]
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from dispatch.assignments.intake import qualified_handler
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadQualifiedV1
from tests.dispatch.conftest import dispatch_settings, start_dispatch
from tests.support.clock import Clock
from tests.support.infra import create_database, drop_database

BATCH = 20


def _envelope(clock: Clock, index: int) -> Envelope:
    lead_id = str(uuid.uuid4())
    payload = LeadQualifiedV1(
        lead_id=lead_id,
        source="leboncoin",
        received_at=clock.now - timedelta(minutes=30),
        qualified_at=clock.now,
        operator_id="op-1",
        contact=ContactV1(full_name="Jeanne Martin", phone=f"+3361{uuid.uuid4().int % 10**7:07d}"),
        intent="buy",
        channel="in_store" if index % 4 else "full_web",
        site=("lyon", "paris")[index % 2],
    )
    return Envelope(
        source="/vo-leads/qualify",
        type="lead.qualified.v1",
        subject=lead_id,
        data=payload.model_dump(mode="json"),
    )


async def measure(batches: int) -> tuple[float, float, int]:
    """(best, median) CPU seconds per lead and the statements of a batch."""
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    clock = Clock()
    try:
        async with start_dispatch(dispatch_settings(url), clock) as api:
            for site in ("lyon", "paris"):
                await api.site(site)
                for index in range(10):
                    await api.seller(f"{site}-{index}", site_id=site, capacity=1000)
            for index in range(10):
                await api.seller(f"web-{index}", mode="full_web", site_id=None, capacity=1000)
            handler = qualified_handler(api.runtime, api.handoff(capacity=1_000_000))
            seen: list[Any] = []
            event.listen(
                api.runtime.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a)
            )
            cpu: list[float] = []
            for _ in range(batches):
                envelopes = [_envelope(clock, index) for index in range(BATCH)]
                seen.clear()
                start = time.process_time()
                async with session_scope(api.runtime.session_factory) as session:
                    for envelope in envelopes:
                        await handler(session, envelope)
                cpu.append((time.process_time() - start) / BATCH)
            return min(cpu), sorted(cpu)[len(cpu) // 2], len(seen)
    finally:
        await drop_database(url)


def main() -> None:
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    best, median, statements = asyncio.run(measure(batches))
    sys.stdout.write(
        f"{batches} batches of {BATCH}: CPU per lead best {best * 1000:.2f} ms, "
        f"median {median * 1000:.2f} ms; {statements} statements a batch\n"
    )


if __name__ == "__main__":
    main()
