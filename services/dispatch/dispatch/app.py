"""Dispatch: routing of qualified leads to sellers under the contact schedule."""

from __future__ import annotations

from fastapi import FastAPI

from dispatch.assignments.router import router as managers_router
from dispatch.callbacks.router import router as callbacks_router
from dispatch.directory.router import router as directory_router
from dispatch.models import infra
from dispatch.people.router import router as people_router
from dispatch.sellers.router import router as sellers_router
from dispatch.settings import DispatchSettings
from dispatch.webhooks.router import router as webhooks_router
from shared.app import create_service_app
from shared.clock import Clock, utcnow


def create_app(settings: DispatchSettings, *, clock: Clock = utcnow) -> FastAPI:
    """The API; ``clock`` is the runtime's "now" (deadlines, the board), moved by tests."""
    return create_service_app(
        settings,
        infra=infra,
        routers=[
            directory_router,
            people_router,
            callbacks_router,
            managers_router,
            sellers_router,
            webhooks_router,
        ],
        title="VO leads — dispatch",
        description="Routes qualified leads to in-store or full-web sellers.",
        clock=clock,
    )
