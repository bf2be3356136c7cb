"""Ingest: normalises every lead source into canonical leads on ``lead.received.v1``."""

from __future__ import annotations

from fastapi import FastAPI

from ingest.leads.router import router as leads_router
from ingest.models import infra
from shared.app import create_service_app
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        settings,
        infra=infra,
        routers=[leads_router],
        title="VO leads — ingest",
        description="Accepts leads from every source and publishes canonical lead events.",
    )
