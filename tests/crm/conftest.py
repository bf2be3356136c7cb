"""Fixtures of crm's own tests: the crm API alone (no worker) on SQLite or PostgreSQL, on a clock
the test may move; facts recorded through the consumers' own code paths (``SlaRepository.apply``,
``resolve_client``) instead of the bus."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from crm.app import create_app
from crm.clients.handlers import resolve_client
from crm.clients.repository import ClientRepository
from crm.settings import CrmSettings
from crm.sla.handlers import calendar_handler
from crm.sla.observations import Observation
from crm.sla.repository import SlaRepository
from crm.sla.stages import SlaPolicy
from shared.auth import store_token
from shared.clock import Clock, utcnow
from shared.db import session_scope
from shared.events import Envelope
from shared.events.payloads import (
    FULL_WEB_POOL,
    ContactV1,
    LeadReceivedV1,
    SiteCalendarChangedV1,
    VehicleV1,
)
from shared.runtime import Runtime
from tests.support.harness import DEV_TOKEN, SERVICES, RunningService, System, migrate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"


class CrmFactory:
    """Starts crm's API on the test's database, with settings and a clock of the test's choice."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path

    def settings(self, **values: Any) -> CrmSettings:
        values.setdefault("dev_token", DEV_TOKEN)
        values.setdefault("log_json", True)
        return CrmSettings(
            database_url=self.url, embedded_bus_path=self.tmp_path / "bus.db", **values
        )

    @asynccontextmanager
    async def running(self, *, clock: Clock = utcnow, **values: Any) -> AsyncIterator[System]:
        settings = self.settings(**values)
        await migrate(settings)
        app = create_app(settings, clock=clock)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=transport,
                base_url="http://crm.test",
                headers={"Authorization": f"Bearer {DEV_TOKEN}"},
            ) as client,
        ):
            crm = RunningService(SERVICES["crm"], settings, app, transport, client, None)
            yield System({"crm": crm})


@pytest.fixture
def crm(crm_url: str, tmp_path: Path) -> CrmFactory:
    return CrmFactory(crm_url, tmp_path)


def runtime_of(service: RunningService) -> Runtime[CrmSettings]:
    runtime = service.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


async def record(service: RunningService, observations: Iterable[Observation]) -> None:
    """Apply SLA observations as the SLA consumer does, at the app's "now"."""
    runtime = runtime_of(service)
    policy = runtime.component(SlaPolicy)
    async with session_scope(runtime.session_factory) as session:
        repository = SlaRepository.from_session(session)
        for observation in observations:
            await repository.apply(observation, policy, now=runtime.clock())


async def publish_calendar(
    service: RunningService,
    calendar_id: str,
    opening_hours: str,
    *,
    change: Literal["created", "updated", "republished"] = "created",
    changed_at: datetime | None = None,
) -> None:
    """A ``site.calendar-changed.v1`` from dispatch, handled as the SLA consumer does."""
    runtime = runtime_of(service)
    full_web = calendar_id == FULL_WEB_POOL
    event = SiteCalendarChangedV1(
        calendar_id=calendar_id,
        site_id=None if full_web else calendar_id,
        pool="full_web" if full_web else "in_store",
        timezone="Europe/Paris",
        opening_hours=opening_hours,
        change=change,
        changed_at=changed_at or runtime.clock(),
    )
    envelope = Envelope(
        source="/dispatch",
        type="site.calendar-changed.v1",
        subject=calendar_id,
        data=event.model_dump(mode="json"),
    )
    handler = calendar_handler(runtime.component(SlaPolicy), runtime.clock)
    async with session_scope(runtime.session_factory) as session:
        await handler(session, envelope)


async def receive(service: RunningService, contact: ContactV1) -> str:
    """A lead received from this contact, resolved as the clients' consumer does; its client id."""
    runtime = runtime_of(service)
    lead_id = str(uuid.uuid4())
    event = LeadReceivedV1(
        lead_id=lead_id,
        kind="enquiry",
        source="api",
        source_ref=lead_id,
        received_at=runtime.clock(),
        contact=contact,
        vehicle=VehicleV1(),
    )
    async with session_scope(runtime.session_factory) as session:
        await resolve_client(session, event, str(uuid.uuid4()), now=runtime.clock())
        client = await ClientRepository.from_session(session).client_of_lead(lead_id)
    assert client is not None
    return client.id


async def store_role_token(service: RunningService, role: str) -> str:
    """A token holding only ``role``, stored in crm's database."""
    runtime = runtime_of(service)
    token = f"vo_{role}"
    async with session_scope(runtime.session_factory) as session:
        await store_token(session, runtime.infra.api_token, token=token, name=role, roles=[role])
    return token
