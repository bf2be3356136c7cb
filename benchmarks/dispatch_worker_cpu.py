"""Client CPU of the two reads/writes of the dispatch worker's per-lead path that changed, on
PostgreSQL, old and new way alternately in one process (the machine's noise hits both alike):

- intake of a lead with a vehicle (in store, its site's pool of 10 sellers): main read the
  probe, then routing read the pool's first page (two statements); now the probe brings the
  page along (``page_lateral``) and routing takes it from ``prefetch`` (one statement);
- the sender's record of a delivered pass (one delivery): main executed the text statement
  through the session (compiled-cache look-up, parameters by name); now a ``Prepared`` one.

Each round runs ``n`` of each way (the intake's in a transaction rolled back, the record in
autocommit as the sender runs it; it records a delivery that is not there: nothing is written)
and takes ``time.process_time``; the median over the rounds, per lead / per pass.

    .venv/bin/python -m benchmarks.dispatch_worker_cpu [n per round] [rounds]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.assignments.repository import AssignmentRepository
from dispatch.routing.repository import PAGE_SIZE, SellerPoolRepository, forget_prefetched
from dispatch.routing.strategy import SortKey
from dispatch.webhooks.repository import _RECORD_DELIVERED_PG, Delivered, WebhookRepository
from shared.db.session import SessionFactory, read_only
from tests.dispatch.conftest import dispatch_settings, start_dispatch
from tests.support.clock import Clock
from tests.support.infra import create_database, drop_database

_ORDER: tuple[SortKey, ...] = ("load", "last_offered", "id")
Way = Callable[[AsyncSession], Awaitable[None]]


async def _probe_then_page(session: AsyncSession) -> None:
    """main's intake of a lead with a vehicle: the probe, then routing's page read."""
    await AssignmentRepository(session).intake_probe(
        str(uuid.uuid4()), ["h"], site_id="lyon", source="leboncoin", ad_ref="AD-1"
    )
    await SellerPoolRepository(session).page(
        pool="in_store", site_id="lyon", order=_ORDER, offset=0, limit=PAGE_SIZE
    )


async def _probe_with_page(session: AsyncSession) -> None:
    """Now: the probe brings the page, which routing's page read takes."""
    await AssignmentRepository(session).intake_probe(
        str(uuid.uuid4()),
        ["h"],
        site_id="lyon",
        source="leboncoin",
        ad_ref="AD-1",
        page=("in_store", "lyon", _ORDER),
    )
    await SellerPoolRepository(session).page(
        pool="in_store", site_id="lyon", order=_ORDER, offset=0, limit=PAGE_SIZE
    )
    forget_prefetched(session)


_NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


async def _record_compiled(session: AsyncSession) -> None:
    """main's record of a delivered pass: the text statement through the session."""
    rows = await session.execute(
        _RECORD_DELIVERED_PG,
        {"ids": ["msg_x"], "codes": [204], "latencies": [3], "now": _NOW},
    )
    rows.all()


async def _record_prepared(session: AsyncSession) -> None:
    await WebhookRepository(session).record_delivered(
        [Delivered("msg_x", 204, 3)], _NOW, next_due=True
    )


async def _round(factory: SessionFactory, way: Way, n: int, *, autocommit: bool) -> float:
    """``n`` runs of ``way`` in one transaction, rolled back (``autocommit``: on a
    ``read_only`` connection, as the sender's record runs; nothing is written either way)."""
    async with read_only(factory) if autocommit else factory() as session:
        start = time.process_time()
        for _ in range(n):
            await way(session)
        elapsed = time.process_time() - start
        if not autocommit:
            await session.rollback()
    return elapsed * 1000 / n


async def measure(n: int, rounds: int) -> dict[str, list[float]]:
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    try:
        async with start_dispatch(dispatch_settings(url), Clock()) as api:
            await api.site("lyon")
            for index in range(10):
                await api.seller(f"lyon-{index}", site_id="lyon", capacity=1000)
            factory = api.runtime.session_factory
            ways: dict[str, Way] = {
                "intake, probe then page (main)": _probe_then_page,
                "intake, probe with page (now)": _probe_with_page,
                "delivered pass, compiled (main)": _record_compiled,
                "delivered pass, prepared (now)": _record_prepared,
            }
            figures: dict[str, list[float]] = {name: [] for name in ways}
            for name, way in ways.items():  # warm up
                await _round(factory, way, 20, autocommit=name.startswith("delivered"))
            for index in range(rounds):
                names = list(ways) if index % 2 == 0 else list(reversed(ways))
                for name in names:
                    autocommit = name.startswith("delivered")
                    figures[name].append(
                        await _round(factory, ways[name], n, autocommit=autocommit)
                    )
            return figures
    finally:
        await drop_database(url)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    for name, values in asyncio.run(measure(n, rounds)).items():
        sys.stdout.write(
            f"{name:<34} median {statistics.median(values):.3f} ms, best {min(values):.3f} ms\n"
        )


if __name__ == "__main__":
    main()
