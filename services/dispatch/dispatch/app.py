"""Dispatch: routing of qualified leads to sellers under the contact schedule."""

from __future__ import annotations

from fastapi import FastAPI

from dispatch.assignments.router import router as managers_router
from dispatch.callbacks.router import router as callbacks_router
from dispatch.clock import Clock
from dispatch.directory.router import router as directory_router
from dispatch.models import infra
from dispatch.webhooks.router import router as webhooks_router
from shared.app import create_service_app
from shared.clock import utcnow
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings, *, clock: Clock = utcnow) -> FastAPI:
    app = create_service_app(
        settings,
        infra=infra,
        routers=[directory_router, callbacks_router, managers_router, webhooks_router],
        title="VO leads — dispatch",
        description="Routes qualified leads to in-store or full-web sellers.",
    )
    app.state.clock = clock
    return app
