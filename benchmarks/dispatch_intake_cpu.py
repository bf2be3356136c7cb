"""CPU per routed lead of the dispatch worker, in process on PostgreSQL: batches of qualified
leads (in store at two sites, one in four full web; 10 sellers per pool), each batch handled by
the leads consumer's handler in one unit of work and committed, as a polled batch is; then the
webhook sender's pass that POSTs the batch's offers (handed over at birth) to a minimal HTTP
server in this process (it answers 204 at once; its cost is counted, and small) and records
them. Batch sizes 1 (what the worker mostly sees at 20 leads/s) and 20. The CPU time
(``time.process_time``) per lead: median and best over the batches, and the statements.
``vehicles``: each lead names a vehicle (not in stock), as the pipeline benchmark's leads do.

    .venv/bin/python -m benchmarks.dispatch_intake_cpu [leads per size] [sizes, e.g. 1,20]
        [vehicles]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from dispatch.assignments.intake import qualified_handler
from dispatch.webhooks.delivery import webhook_http_client
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadQualifiedV1
from tests.dispatch.conftest import dispatch_settings, start_dispatch
from tests.support.clock import Clock
from tests.support.infra import create_database, drop_database

_ANSWER = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


def _envelope(clock: Clock, index: int, *, vehicles: bool = False) -> Envelope:
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
        vehicle_ad_ref=f"AD-{uuid.uuid4().int % 500}" if vehicles else None,
    )
    return Envelope(
        source="/vo-leads/qualify",
        type="lead.qualified.v1",
        subject=lead_id,
        data=payload.model_dump(mode="json"),
    )


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A seller's tool that answers 204 to every request (kept alive)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(_ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@dataclass
class Figures:
    size: int
    intake_ms: list[float]
    sender_ms: list[float]
    intake_statements: int
    sender_statements: int

    def line(self) -> str:
        def cut(values: list[float]) -> str:
            return f"median {statistics.median(values):.2f} ms, best {min(values):.2f} ms"

        return (
            f"batch {self.size:>2}: intake CPU per lead {cut(self.intake_ms)}; "
            f"sender pass per lead {cut(self.sender_ms)}; statements per batch: "
            f"intake {self.intake_statements}, sender {self.sender_statements}"
        )


async def measure(leads: int, sizes: list[int], *, vehicles: bool = False) -> list[Figures]:
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = Clock()
    try:
        async with start_dispatch(dispatch_settings(url), clock) as api:
            hook = f"http://127.0.0.1:{port}/hook"
            for site in ("lyon", "paris"):
                await api.site(site)
                for index in range(10):
                    await api.seller(
                        f"{site}-{index}", site_id=site, capacity=1000, webhook_url=hook
                    )
            for index in range(10):
                await api.seller(
                    f"web-{index}", mode="full_web", site_id=None, capacity=1000, webhook_url=hook
                )
            handoff = api.handoff(capacity=1_000_000)
            handler = qualified_handler(api.runtime, handoff)
            seen: list[Any] = []
            event.listen(
                api.runtime.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a)
            )
            figures = []
            async with webhook_http_client(api.settings) as client:
                sender = api.sender(client, handoff)
                for size in sizes:
                    result = Figures(size, [], [], 0, 0)
                    for _ in range(max(leads // size, 3)):
                        envelopes = [
                            _envelope(clock, index, vehicles=vehicles) for index in range(size)
                        ]
                        seen.clear()
                        start = time.process_time()
                        async with session_scope(api.runtime.session_factory) as session:
                            for envelope in envelopes:
                                await handler(session, envelope)
                        result.intake_ms.append((time.process_time() - start) * 1000 / size)
                        result.intake_statements = len(seen)
                        seen.clear()
                        start = time.process_time()
                        sent = await sender.send_due()
                        result.sender_ms.append((time.process_time() - start) * 1000 / size)
                        result.sender_statements = len(seen)
                        assert sent == size, (sent, size)
                    figures.append(result)
            return figures
    finally:
        server.close()
        await drop_database(url)


def main() -> None:
    leads = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    sizes = [int(size) for size in (sys.argv[2] if len(sys.argv) > 2 else "1,20").split(",")]
    vehicles = len(sys.argv) > 3 and sys.argv[3] == "vehicles"
    for figures in asyncio.run(measure(leads, sizes, vehicles=vehicles)):
        sys.stdout.write(figures.line() + "\n")


if __name__ == "__main__":
    main()
