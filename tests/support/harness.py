"""Runs the four services in one event loop for tests: apps behind httpx ASGI clients, workers as
tasks, on either backend (SQLite + embedded bus, or PostgreSQL + Kafka)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from crm.bootstrap import SERVICE as CRM
from dispatch.bootstrap import SERVICE as DISPATCH
from ingest.bootstrap import SERVICE as INGEST
from qualify.bootstrap import SERVICE as QUALIFY
from shared.bus import build_bus
from shared.cli import ServiceDefinition
from shared.clock import Clock, utcnow
from shared.db.migrate import upgrade
from shared.events import Envelope, Topics
from shared.settings import ServiceSettings
from shared.worker import Worker

SERVICES: dict[str, ServiceDefinition[Any]] = {
    definition.name: definition for definition in (INGEST, QUALIFY, DISPATCH, CRM)
}
DEV_TOKEN = "vo_test-token-with-every-role"
# Test receivers of webhooks listen on loopback, which dispatch may reach only when allowed.
WEBHOOK_LOOPBACK = ("127.0.0.0/8", "::1/128")

T = TypeVar("T")


@dataclass
class RunningService:
    definition: ServiceDefinition[Any]
    settings: ServiceSettings
    app: FastAPI
    transport: httpx.ASGITransport
    client: httpx.AsyncClient
    worker: Worker | None

    def client_as(self, token: str | None) -> httpx.AsyncClient:
        """Another client of the same app: with ``token``, or with no Authorization at all.
        The caller closes it (``async with``)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.AsyncClient(
            transport=self.transport, base_url=str(self.client.base_url), headers=headers
        )


class System:
    def __init__(self, services: Mapping[str, RunningService]) -> None:
        self.services = dict(services)

    def client(self, name: str) -> httpx.AsyncClient:
        return self.services[name].client

    def client_as(self, name: str, token: str | None) -> httpx.AsyncClient:
        return self.services[name].client_as(token)

    @property
    def ingest(self) -> httpx.AsyncClient:
        return self.client("ingest")

    @property
    def qualify(self) -> httpx.AsyncClient:
        return self.client("qualify")

    @property
    def crm(self) -> httpx.AsyncClient:
        return self.client("crm")


def settings_for(name: str, **values: Any) -> ServiceSettings:
    values.setdefault("dev_token", DEV_TOKEN)
    values.setdefault("log_json", True)
    values.setdefault("consumer_retry_backoff_s", 0.01)
    values.setdefault("outbox_poll_interval_s", 0.05)
    if name == "dispatch":
        values.setdefault("webhook_allowed_networks", WEBHOOK_LOOPBACK)
    settings: ServiceSettings = SERVICES[name].settings_factory(**values)
    return settings


async def migrate(settings: ServiceSettings) -> None:
    definition = SERVICES[settings.service_name]
    await asyncio.to_thread(upgrade, definition.migrations, settings.resolved_database_url())


@asynccontextmanager
async def run_app(
    settings: ServiceSettings, *, clock: Clock = utcnow
) -> AsyncIterator[RunningService]:
    definition = SERVICES[settings.service_name]
    app = definition.create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport,
            base_url=f"http://{settings.service_name}.test",
            headers={"Authorization": f"Bearer {DEV_TOKEN}"},
        ) as client,
    ):
        yield RunningService(definition, settings, app, transport, client, None)


@asynccontextmanager
async def run_worker(settings: ServiceSettings) -> AsyncIterator[Worker]:
    definition = SERVICES[settings.service_name]
    worker = Worker(settings, infra=definition.infra, consumers=definition.consumers)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


@asynccontextmanager
async def run_system(
    settings: Mapping[str, ServiceSettings], *, workers: bool = True
) -> AsyncIterator[System]:
    async with AsyncExitStack() as stack:
        running = {}
        for name, service_settings in settings.items():
            await migrate(service_settings)
            service = await stack.enter_async_context(run_app(service_settings))
            if workers:
                service.worker = await stack.enter_async_context(run_worker(service_settings))
            running[name] = service
        yield System(running)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30.0, interval_s: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {last!r})")


async def publish_events(settings: ServiceSettings, envelopes: list[Envelope]) -> None:
    """Publish events straight onto the lead topic of ``settings``' bus (as a producer would)."""
    bus = build_bus(settings)
    await bus.start()
    try:
        for envelope in envelopes:
            await bus.publish(
                Topics.LEADS,
                key=envelope.to_key(),
                value=envelope.to_value(),
                headers=envelope.to_headers(),
            )
    finally:
        await bus.stop()
