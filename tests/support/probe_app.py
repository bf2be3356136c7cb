"""A service app built by the shared factory around test routes, for tests of the shared HTTP
layer: in process (httpx over ASGI) or behind a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI

from shared.app import create_service_app
from tests.support.messaging import MessagingSettings, infra, messaging_harness


def probe_settings(tmp_path: Path, database_url: str | None = None) -> MessagingSettings:
    return MessagingSettings(
        database_url=database_url or f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}",
        bus="embedded",
        embedded_bus_path=tmp_path / "bus.db",
    )


def probe_app(settings: MessagingSettings, routers: Sequence[APIRouter]) -> FastAPI:
    return create_service_app(
        settings,
        infra=infra,
        routers=routers,
        title="probe",
        description="shared HTTP layer under test",
    )


@asynccontextmanager
async def probe_client(
    settings: MessagingSettings, routers: Sequence[APIRouter]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI (tables created, lifespan run)."""
    async with messaging_harness(settings):
        pass  # creates the tables
    app = probe_app(settings, routers)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://probe.test") as client,
    ):
        yield client


@asynccontextmanager
async def probe_server(
    settings: MessagingSettings, routers: Sequence[APIRouter]
) -> AsyncIterator[int]:
    """The app behind a real uvicorn server on 127.0.0.1; yields its port."""
    async with messaging_harness(settings):
        pass
    config = uvicorn.Config(
        probe_app(settings, routers), host="127.0.0.1", port=0, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                await serving  # raises what stopped it
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await serving
