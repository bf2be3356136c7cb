"""CRM: client history across sources, GDPR rights, managers' SLA figures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from crm.alerts.router import router as alerts_router
from crm.clients.router import router as clients_router
from crm.models import infra
from crm.privacy.exports_router import router as exports_router
from crm.privacy.router import router as privacy_router
from crm.settings import CrmSettings
from crm.sla.fact_copy.copy import SlaFactCopy
from crm.sla.router import router as sla_router
from crm.sla.stages import policy_from_settings
from shared.app import create_service_app
from shared.clock import Clock, utcnow
from shared.runtime import Runtime


@asynccontextmanager
async def provide_sla_policy(runtime: Runtime[CrmSettings]) -> AsyncIterator[None]:
    """The SLA policy, built once per process (bad SLA settings stop the start-up), and on
    PostgreSQL the columnar copy of the facts the summary reads, loaded in the background from
    the start (the first summary waits for that load if it is not done)."""
    policy = policy_from_settings(runtime.settings)
    runtime.provide(policy)
    if not (runtime.settings.sla_columnar_copy and runtime.engine.dialect.name == "postgresql"):
        yield
        return
    facts = SlaFactCopy(runtime.engine, policy.targets_seconds())
    runtime.provide(facts)
    loading = asyncio.create_task(facts.warm(), name="sla-copy-load")
    try:
        yield
    finally:
        loading.cancel()
        with suppress(asyncio.CancelledError):
            await loading


def create_app(settings: CrmSettings, *, clock: Clock = utcnow) -> FastAPI:
    return create_service_app(
        settings,
        infra=infra,
        routers=[clients_router, exports_router, privacy_router, sla_router, alerts_router],
        title="VO leads — crm",
        description="Clients resolved across sources, with their timeline.",
        clock=clock,
        lifespan_hooks=[provide_sla_policy],
    )
