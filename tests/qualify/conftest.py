"""Fixtures of qualify's API tests: the qualify app alone (no worker), a controllable clock,
tokens of distinct operators, and leads put in the queue as ``lead.received.v1`` would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from qualify.models import infra
from qualify.policy import Policy
from qualify.queue.handlers import queue_lead
from shared.auth import store_token
from shared.db.session import session_scope
from shared.events.payloads import ContactV1, LeadReceivedV1, VehicleV1
from shared.runtime import Runtime
from shared.settings import ServiceSettings
from tests.support.harness import run_system, settings_for

PARIS = ZoneInfo("Europe/Paris")
# A Tuesday, inside the call centre's hours and the legal calling window.
TUESDAY_11H = datetime(2026, 11, 24, 11, 0, tzinfo=PARIS)


@dataclass
class Clock:
    now: datetime = TUESDAY_11H

    def __call__(self) -> datetime:
        return self.now


@dataclass
class QualifyApi:
    """The running qualify app, its clock and per-operator clients."""

    runtime: Runtime[Any]
    policy: Policy
    clock: Clock
    base: httpx.AsyncClient
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    async def client(self, name: str, roles: tuple[str, ...] = ("operator",)) -> httpx.AsyncClient:
        """A client authenticated as the operator ``name`` (token stored on first use)."""
        if name not in self.clients:
            token = f"vo_{name}-{uuid.uuid4().hex}"
            async with session_scope(self.runtime.session_factory) as session:
                self.ids[name] = await store_token(
                    session, infra.api_token, token=token, name=name, roles=roles
                )
            self.clients[name] = httpx.AsyncClient(
                transport=self.base._transport,
                base_url=str(self.base.base_url),
                headers={"Authorization": f"Bearer {token}"},
            )
        return self.clients[name]

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
    ) -> str:
        lead_id = lead_id or str(uuid.uuid4())
        event = LeadReceivedV1.model_validate(
            {
                "lead_id": lead_id,
                "kind": kind,
                "source": source,
                "source_ref": f"ref-{lead_id}",
                "received_at": received_at or self.clock.now,
                "contact": ContactV1(full_name="Camille Durand", phone=phone, email=email),
                "vehicle": VehicleV1(ad_ref=ad_ref),
            }
        )
        async with session_scope(self.runtime.session_factory) as session:
            await queue_lead(session, self.policy, event)
        return lead_id

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


async def open_api(settings: ServiceSettings) -> AsyncIterator[QualifyApi]:
    async with run_system({"qualify": settings}, workers=False) as system:
        service = system.services["qualify"]
        policy = service.app.state.policy
        assert isinstance(policy, Policy)
        clock = Clock()
        policy.clock = clock
        api = QualifyApi(service.app.state.runtime, policy, clock, service.client)
        try:
            yield api
        finally:
            await api.close()


def qualify_settings(database_url: str, tmp_path: Path, **values: Any) -> ServiceSettings:
    return settings_for(
        "qualify",
        database_url=database_url,
        bus="embedded",
        embedded_bus_path=tmp_path / "bus.db",
        **values,
    )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[QualifyApi]:
    settings = qualify_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}",
        tmp_path,
        first_contact_minutes_by_source={"facebook": 5},
        unreachable_after_attempts=3,
    )
    async for value in open_api(settings):
        yield value


def paris_now(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)
