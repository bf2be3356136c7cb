"""Fixtures of dispatch's tests: the dispatch app alone (no worker) with a clock the test moves
(``tests/support/clock.py``), helpers to create sites, sellers and qualified leads, the timer
runner and webhook sender on the same clock, and a real HTTP receiver on 127.0.0.1 that verifies
Standard Webhooks signatures."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.app import create_app
from dispatch.assignments.deadlines import timer_handlers
from dispatch.assignments.intake import on_qualified
from dispatch.assignments.step import Step
from dispatch.models import WebhookDelivery, infra
from dispatch.settings import DispatchSettings
from dispatch.timers.repository import TimerRepository
from dispatch.timers.runner import TimerRunner
from dispatch.webhooks.delivery import WebhookSender, webhook_http_client
from dispatch.webhooks.handoff import WebhookHandoff
from shared.auth import store_token
from shared.db.session import session_scope, wakeups_of
from shared.events.payloads import ContactV1, LeadQualifiedV1
from shared.runtime import Runtime
from tests.support.clock import Clock
from tests.support.harness import DEV_TOKEN, migrate, settings_for
from tests.support.ports import free_port

STORE_HOURS = "mon-fri 09:00-12:30,14:00-19:00; sat 09:00-12:00"


@dataclass
class DispatchApi:
    """The running dispatch app, its clock, an admin client (on ``transport``) and helpers."""

    runtime: Runtime[DispatchSettings]
    settings: DispatchSettings
    clock: Clock
    transport: httpx.ASGITransport
    admin: httpx.AsyncClient
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def timers(self) -> TimerRunner:
        handlers = timer_handlers(self.settings, self.runtime.outbox)
        return TimerRunner(self.runtime.session_factory, self.settings, handlers, clock=self.clock)

    def sender(
        self, client: httpx.AsyncClient, handoff: WebhookHandoff | None = None
    ) -> WebhookSender:
        return WebhookSender(
            self.runtime.session_factory,
            self.settings,
            client,
            outbox=self.runtime.outbox,
            clock=self.clock,
            handoff=handoff,
        )

    def handoff(self, *, capacity: int = 200) -> WebhookHandoff:
        """A worker's queue of messages claimed at birth (on the webhook loop's signal)."""
        return WebhookHandoff(
            wakeups_of(self.runtime.session_factory).signal(WebhookDelivery.__tablename__),
            lease_s=self.settings.webhook_lease_s,
            capacity=capacity,
        )

    def step(self, session: AsyncSession, handoff: WebhookHandoff | None = None) -> Step:
        """A step of the life cycle in ``session``, at the clock's now (as the worker makes;
        ``handoff``: its sender's queue)."""
        return Step(session, self.settings, self.runtime.outbox, self.clock(), handoff)

    def client_with(self, token: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=self.transport,
            base_url=str(self.admin.base_url),
            headers={"Authorization": f"Bearer {token}"},
        )
        self.clients.append(client)
        return client

    async def client_for_roles(self, *roles: str) -> httpx.AsyncClient:
        return (await self.principal(*roles))[0]

    async def principal(self, *roles: str) -> tuple[httpx.AsyncClient, str]:
        """A client with a new token of these roles, and the token's id (what events name)."""
        token = f"vo_{'-'.join(roles)}-{uuid.uuid4().hex}"
        async with session_scope(self.runtime.session_factory) as session:
            token_id = await store_token(
                session, infra.api_token, token=token, name="test", roles=roles
            )
        return self.client_with(token), token_id

    async def site(self, site_id: str = "lyon", **values: Any) -> dict[str, Any]:
        body = {
            "id": site_id,
            "name": f"Store {site_id}",
            "postcode": "69003",
            "opening_hours": STORE_HOURS,
            **values,
        }
        response = await self.admin.post("/v1/sites", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def seller(self, name: str, **values: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "display_name": name,
            "mode": "in_store",
            "site_id": "lyon",
            "shifts": "mon-sat 08:00-20:00",
            **values,
        }
        response = await self.admin.post("/v1/sellers", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def seller_client(self, seller_id: str) -> httpx.AsyncClient:
        response = await self.admin.post(f"/v1/sellers/{seller_id}/token")
        assert response.status_code == 201, response.text
        return self.client_with(str(response.json()["token"]))

    async def qualify(self, handoff: WebhookHandoff | None = None, **values: Any) -> str:
        """Feed a qualified lead as the ``lead.qualified.v1`` consumer does (``handoff``: the
        worker's sender queue its offer is claimed at birth for)."""
        lead_id = str(values.pop("lead_id", uuid.uuid4()))
        payload = LeadQualifiedV1(
            lead_id=lead_id,
            source=values.pop("source", "leboncoin"),
            received_at=self.clock.now - timedelta(minutes=30),
            qualified_at=self.clock.now,
            operator_id="op-1",
            contact=values.pop(
                "contact", ContactV1(full_name="Jeanne Martin", phone="+33612345678")
            ),
            intent="buy",
            channel=values.pop("channel", "in_store"),
            site=values.pop("site", "lyon"),
            **values,
        )
        async with session_scope(self.runtime.session_factory) as session:
            await on_qualified(self.step(session, handoff), payload)
        return lead_id

    async def assignments(self, lead_id: str) -> list[dict[str, Any]]:
        response = await self.admin.get(f"/v1/leads/{lead_id}/assignments")
        assert response.status_code == 200, response.text
        return list(response.json())

    async def lead(self, lead_id: str) -> dict[str, Any]:
        response = await self.admin.get(f"/v1/leads/{lead_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Events staged in the outbox (the relay does not run here), oldest first."""
        table = infra.outbox_event
        query = select(table.c.event_type, table.c.value).order_by(table.c.id)
        if event_type is not None:
            query = query.where(table.c.event_type == event_type)
        async with self.runtime.session_factory() as session:
            rows = (await session.execute(query)).all()
        return [{"type": row.event_type, "data": json.loads(row.value)} for row in rows]

    async def open_count(self, seller_id: str) -> int:
        response = await self.admin.get(f"/v1/sellers/{seller_id}")
        assert response.status_code == 200, response.text
        return int(response.json()["open_count"])

    async def pending_timers(self, lead_id: str) -> list[tuple[str, str | None, datetime]]:
        """(kind, assignment id, due) of the lead's pending timers, soonest first."""
        async with self.runtime.session_factory() as session:
            timers = await TimerRepository(session).pending(lead_id)
        return [(timer.kind, timer.assignment_id, timer.due_at) for timer in timers]

    async def deliver(self) -> int:
        """Send every due webhook once (to the test's receiver), with the worker's client."""
        async with webhook_http_client(self.settings) as client:
            return await self.sender(client).send_due()

    async def count(self, model: Any, *where: Any) -> int:
        async with self.runtime.session_factory() as session:
            value = await session.scalar(select(func.count()).select_from(model).where(*where))
        return int(value or 0)


@asynccontextmanager
async def start_dispatch(settings: DispatchSettings, clock: Clock) -> AsyncIterator[DispatchApi]:
    await migrate(settings)
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport,
            base_url="http://dispatch.test",
            headers={"Authorization": f"Bearer {DEV_TOKEN}"},
        ) as admin,
    ):
        api = DispatchApi(app.state.runtime, settings, clock, transport, admin)
        try:
            yield api
        finally:
            for client in api.clients:
                await client.aclose()


def dispatch_settings(database_url: str, **values: Any) -> DispatchSettings:
    """Dispatch's settings for tests (``settings_for``: webhooks may reach loopback)."""
    settings = settings_for("dispatch", database_url=database_url, **values)
    assert isinstance(settings, DispatchSettings)
    return settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def dispatch(tmp_path: Path, clock: Clock) -> AsyncIterator[DispatchApi]:
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        webhook_disable_after_failures=3,
    )
    async with start_dispatch(settings, clock) as api:
        yield api


# -- a real webhook receiver on 127.0.0.1 ----------------------------------------------------


@dataclass
class Received:
    name: str
    event_type: str
    webhook_id: str
    payload: dict[str, Any]
    traceparent: str | None = None


@dataclass
class Receiver:
    """Endpoints ``/hooks/<name>``: each verifies the signature with the secret registered for
    it and answers the next scripted response (default 204)."""

    base_url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    rejected: int = 0

    def url(self, name: str) -> str:
        return f"{self.base_url}/hooks/{name}"

    def script(self, name: str, *responses: int | tuple[int, dict[str, str]]) -> None:
        self.scripts[name] = [
            response if isinstance(response, tuple) else (response, {}) for response in responses
        ]

    def of(self, name: str) -> list[Received]:
        return [item for item in self.received if item.name == name]

    async def handle(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        secret = self.secrets.get(name)
        try:
            if secret is None:
                raise WebhookVerificationError("no secret")
            payload = Webhook(secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return Response(status_code=400)
        self.received.append(
            Received(
                name,
                payload["type"],
                request.headers["webhook-id"],
                payload,
                request.headers.get("traceparent"),
            )
        )
        script = self.scripts.get(name)
        status, headers = script.pop(0) if script else (204, {})
        return Response(status_code=status, headers=headers)


@pytest.fixture
async def dispatch_on_postgres(
    postgres_url: str, tmp_path: Path, clock: Clock
) -> AsyncIterator[DispatchApi]:
    """The dispatch app on a fresh PostgreSQL database (the paths only PostgreSQL takes)."""
    url = postgres_url.replace("postgresql://", "postgresql+asyncpg://")
    settings = dispatch_settings(url, embedded_bus_path=tmp_path / "bus.db")
    async with start_dispatch(settings, clock) as dispatch:
        yield dispatch


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dispatch_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh dispatch database on SQLite, then on PostgreSQL (the paths both must take)."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url.replace("postgresql://", "postgresql+asyncpg://")
    return f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}"


@pytest.fixture
async def dispatch_on_either(
    dispatch_database_url: str, tmp_path: Path, clock: Clock
) -> AsyncIterator[DispatchApi]:
    """The dispatch app on ``dispatch_database_url``'s database."""
    settings = dispatch_settings(dispatch_database_url, embedded_bus_path=tmp_path / "bus.db")
    async with start_dispatch(settings, clock) as dispatch:
        yield dispatch


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = Starlette(routes=[Route("/hooks/{name}", state.handle, methods=["POST"])])
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the receiver did not start"
    state.base_url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.should_exit = True
        await task
