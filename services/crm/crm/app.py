"""CRM: client history across sources, GDPR rights, managers' SLA figures."""

from __future__ import annotations

from fastapi import FastAPI

from crm.clients.router import router as clients_router
from crm.models import infra
from crm.privacy.exports_router import router as exports_router
from crm.privacy.router import router as privacy_router
from crm.sla.router import router as sla_router
from shared.app import create_service_app
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        settings,
        infra=infra,
        routers=[clients_router, exports_router, privacy_router, sla_router],
        title="VO leads — crm",
        description="Clients resolved across sources, with their timeline.",
    )
