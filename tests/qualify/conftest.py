"""Fixtures of qualify's API tests: the qualify app alone (no worker) on a clock the test moves,
tokens of distinct operators, and leads put in the queue as ``lead.received.v1`` would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from qualify.app import create_app
from qualify.messages.compose import Composer
from qualify.messages.handoff import SenderHandoff
from qualify.messages.loops import FirstAnswerStep
from qualify.models import infra
from qualify.policy import Policy
from qualify.queue.handlers import lead_received_handler
from qualify.settings import QualifySettings
from shared.auth import store_token
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadReceivedV1, VehicleV1
from shared.runtime import Runtime
from tests.support.clock import PARIS, Clock
from tests.support.harness import DEV_TOKEN, migrate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh qualify database, once on SQLite and once on PostgreSQL, for the tests that
    take it (counted statements, answers compared on both)."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}"


@dataclass
class QualifyApi:
    """The running qualify app, its clock and per-operator clients."""

    runtime: Runtime[QualifySettings]
    clock: Clock
    transport: httpx.ASGITransport
    base: httpx.AsyncClient
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    by_name: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def policy(self) -> Policy:
        return self.runtime.component(Policy)

    def client_as(self, token: str | None) -> httpx.AsyncClient:
        """Another client of the app: with ``token``, or with no Authorization at all."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        client = httpx.AsyncClient(
            transport=self.transport, base_url=str(self.base.base_url), headers=headers
        )
        self.clients.append(client)
        return client

    async def client(self, name: str, roles: tuple[str, ...] = ("operator",)) -> httpx.AsyncClient:
        """A client authenticated as the operator ``name`` (token stored on first use)."""
        if name not in self.by_name:
            token = f"vo_{name}-{uuid.uuid4().hex}"
            async with session_scope(self.runtime.session_factory) as session:
                self.ids[name] = await store_token(
                    session, infra.api_token, token=token, name=name, roles=roles
                )
            self.by_name[name] = self.client_as(token)
        return self.by_name[name]

    async def add_lead(
        self,
        *,
        source: str = "leboncoin",
        kind: str = "enquiry",
        received_at: datetime | None = None,
        phone: str | None = "+33612345678",
        email: str | None = "camille@example.fr",
        ad_ref: str | None = "AD-1",
        lead_id: str | None = None,
        first_name: str | None = None,
        relay_email: str | None = None,
        vehicle: dict[str, Any] | None = None,
        first_answer: bool = False,
        handoff: SenderHandoff | None = None,
    ) -> str:
        """Queue a lead as ``lead.received.v1`` does (with its first answer when asked; given to
        the sender ``handoff`` holds, as the worker does, when one is given)."""
        lead_id = lead_id or str(uuid.uuid4())
        event = LeadReceivedV1.model_validate(
            {
                "lead_id": lead_id,
                "kind": kind,
                "source": source,
                "source_ref": f"ref-{lead_id}",
                "received_at": received_at or self.clock.now,
                "contact": ContactV1(
                    first_name=first_name, full_name="Camille Durand", phone=phone, email=email
                ),
                "vehicle": VehicleV1(ad_ref=ad_ref, **(vehicle or {})),
                "relay_email": relay_email,
            }
        )
        handler = lead_received_handler(
            self.policy,
            self.runtime.clock,
            self.runtime.outbox,
            FirstAnswerStep(self.composer, handoff) if first_answer else None,
        )
        async with session_scope(self.runtime.session_factory) as session:
            await handler(
                session,
                Envelope(
                    source="/test",
                    type="lead.received.v1",
                    subject=lead_id,
                    data=event.model_dump(mode="json"),
                ),
            )
        return lead_id

    @property
    def composer(self) -> Composer:
        return self.runtime.component(Composer)

    @property
    def first_answer(self) -> FirstAnswerStep:
        return FirstAnswerStep(self.composer)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


@asynccontextmanager
async def open_api(settings: QualifySettings, clock: Clock) -> AsyncIterator[QualifyApi]:
    """Qualify's app on ``clock`` (migrated database, lifespan entered), with an admin client."""
    await migrate(settings)
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport,
            base_url="http://qualify.test",
            headers={"Authorization": f"Bearer {DEV_TOKEN}"},
        ) as base,
    ):
        api = QualifyApi(app.state.runtime, clock, transport, base)
        try:
            yield api
        finally:
            await api.close()


def qualify_settings(database_url: str, tmp_path: Path, **values: Any) -> QualifySettings:
    return QualifySettings(
        database_url=database_url,
        bus="embedded",
        embedded_bus_path=tmp_path / "bus.db",
        dev_token=SecretStr(DEV_TOKEN),
        log_json=True,
        **values,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    settings = qualify_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}",
        tmp_path,
        first_contact_minutes_by_source={"facebook": 5},
        unreachable_after_attempts=3,
    )
    async with open_api(settings, clock) as api:
        yield api


def paris_now(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)
