"""CPU per poll of the operators' queue (``GET /v1/queue``) in qualify's API process, in process on
PostgreSQL: the app called as uvicorn calls it (an ASGI scope, its ``receive`` and ``send``; no
HTTP client in the measured CPU), an operator's API token (cached after its first use, as in a
running process), the queue empty, then with 50 leads waiting (one page: ``limit=200``, as the
pipeline benchmark's operator polls).

Each round measures a batch of polls answered by the direct route (``shared.direct``, as the app
wires it) and a batch answered by the FastAPI route (the direct routes switched off), alternately
in the same minutes, and one by the direct route with the autocommit connections the app holds
between requests set aside (``direct pooled``: a connection from the pool per poll, as before
they were held); the CPU time (``time.process_time``) per poll of each batch, medians over the
rounds. Run on a checkout without the direct route, both lines measure the FastAPI route.

    .venv/bin/python -m benchmarks.qualify_queue_poll_cpu [rounds] [polls per batch]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.cpu_probe import AsgiCaller, figures_out
from shared.direct import DirectRoutes
from tests.qualify.conftest import open_api, qualify_settings
from tests.support.clock import Clock
from tests.support.infra import create_database, drop_database

LEADS = 50


class Poller(AsgiCaller):
    """``GET /v1/queue?limit=200``, as the pipeline benchmark's operator polls."""

    async def poll(self) -> tuple[int, bytes]:
        return await self.request("GET", "/v1/queue", query=b"limit=200")


def _switch(direct: list[bool]) -> None:
    """The direct routes on or off (``direct[0]``) for the rest of the process."""
    find = DirectRoutes.find

    def switched(self: DirectRoutes, scope: Any, content_type: str | None) -> Any:
        return find(self, scope, content_type) if direct[0] else None

    DirectRoutes.find = switched  # type: ignore[method-assign]


def held_connections(engine: AsyncEngine) -> Callable[[bool], AbstractContextManager[None]]:
    """``held(False)``: the autocommit connections the app holds between requests set aside
    while the block runs (each request takes one from the pool); ``held(True)``: as the app runs.
    Without held connections (an older checkout) both take them from the pool."""
    try:
        from qualify.queue import repository
    except ImportError:  # pragma: no cover
        registry: Any = {}
    else:
        registry = getattr(repository, "_HELD", {})
    lender = registry.get(engine)

    @contextmanager
    def held(on: bool) -> Iterator[None]:
        if on or lender is None:
            yield
            return
        del registry[engine]
        try:
            yield
        finally:
            registry[engine] = lender

    return held


async def _batch(poller: Poller, polls: int, items: int) -> float:
    start = time.process_time()
    for _ in range(polls):
        status, body = await poller.poll()
        if status != 200 or body.count(b'"lead_id"') != items:
            raise RuntimeError(f"unexpected answer {status}: {body[:200]!r}")
    return (time.process_time() - start) / polls


async def measure(rounds: int, polls: int) -> dict[tuple[str, str], list[float]]:
    url = await create_database()
    direct = [True]
    _switch(direct)
    results: dict[tuple[str, str], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            clock = Clock()
            async with open_api(qualify_settings(url, Path(tmp)), clock) as api:
                client = await api.client("alice")
                token = client.headers["authorization"].partition(" ")[2]
                poller = Poller(api.transport.app, token, b"qualify.test")
                held = held_connections(api.runtime.engine)
                routes = ("direct", "direct pooled", "fastapi")
                for queue, items in (("empty", 0), (f"{LEADS} leads", LEADS)):
                    if items:
                        for index in range(items):
                            await api.add_lead(received_at=clock.now - timedelta(minutes=index))
                    for route in routes:  # warm-up: caches, statements, pool
                        direct[0] = route != "fastapi"
                        with held(route != "direct pooled"):
                            await _batch(poller, polls, items)
                    for index in range(rounds):
                        for route in routes if index % 2 == 0 else routes[::-1]:
                            direct[0] = route != "fastapi"
                            with held(route != "direct pooled"):
                                cpu = await _batch(poller, polls, items)
                            results.setdefault((queue, route), []).append(cpu)
    finally:
        await drop_database(url)
    return results


def main() -> None:
    out = figures_out()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    polls = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    results = asyncio.run(measure(rounds, polls))
    for (queue, route), cpu in results.items():
        out.write(
            f"{queue:>9} {route:>13}: CPU per poll median {statistics.median(cpu) * 1000:.3f} ms, "
            f"best {min(cpu) * 1000:.3f} ms ({rounds} batches of {polls})\n"
        )
    out.flush()


if __name__ == "__main__":
    main()
