"""The APIs' server ticks once a second (idle wake-ups are most of an idle API's CPU), keeps the
Date header exact to the second, and still stops within about a second of a shutdown request."""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime

import httpx
import uvicorn
from fastapi import FastAPI

from shared.http_server import TICK_S, QuietServer
from tests.support.harness import eventually
from tests.support.ports import free_port


async def test_ticks_once_a_second_and_stops_within_one_tick() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    port = free_port()
    server = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    ticks: list[int] = []
    on_tick = server.on_tick

    async def counting_tick(counter: int) -> bool:
        ticks.append(counter)
        return await on_tick(counter)

    server.on_tick = counting_tick  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def started() -> bool:
            return server.started

        await eventually(started, timeout_s=10)
        await asyncio.sleep(3 * TICK_S)
        response = await client.get("/ping")
    assert response.status_code == 200
    served_at = parsedate_to_datetime(response.headers["date"]).timestamp()
    assert abs(served_at - time.time()) < 2 * TICK_S  # refreshed every tick, not frozen
    # uvicorn's own loop would have ticked ~30 times in 3 s.
    assert 2 <= len(ticks) <= 5
    assert all(counter % 10 == 0 for counter in ticks)  # each tick refreshes the Date header

    asked = time.monotonic()
    server.should_exit = True
    await asyncio.wait_for(serving, timeout=5)
    assert time.monotonic() - asked < TICK_S + 1.0
