"""Client CPU of the dispatch worker's intake reads for a lead with a vehicle (in store, its
site's pool of 10 sellers), on PostgreSQL, main's way and the new one alternately in one
process (the machine's noise hits both alike): main read the probe, then routing read the
pool's first page (two statements); now the probe brings the page along (``page_lateral``)
and routing takes it from ``prefetch`` (one statement).

Each round runs ``n`` of each way in a transaction (rolled back: nothing is written) and takes
``time.process_time``; the median and the best over the rounds, per lead.

    .venv/bin/python -m benchmarks.dispatch_worker_cpu [n per round] [rounds]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.assignments.repository import AssignmentRepository
from dispatch.routing.repository import PAGE_SIZE, SellerPoolRepository, forget_prefetched
from dispatch.routing.strategy import SortKey
from shared.db.session import SessionFactory
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


async def _round(factory: SessionFactory, way: Way, n: int) -> float:
    """``n`` runs of ``way`` in one transaction, rolled back."""
    async with factory() as session:
        start = time.process_time()
        for _ in range(n):
            await way(session)
        elapsed = time.process_time() - start
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
            }
            figures: dict[str, list[float]] = {name: [] for name in ways}
            for way in ways.values():  # warm up
                await _round(factory, way, 20)
            for index in range(rounds):
                names = list(ways) if index % 2 == 0 else list(reversed(ways))
                for name in names:
                    figures[name].append(await _round(factory, ways[name], n))
            return figures
    finally:
        await drop_database(url)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    for name, values in asyncio.run(measure(n, rounds)).items():
        sys.stdout.write(
            f"{name:<31} median {statistics.median(values):.3f} ms, best {min(values):.3f} ms\n"
        )


if __name__ == "__main__":
    main()
