"""Qualify: the digital operators' API (queue, claims, attempts, qualification)."""

from __future__ import annotations

from fastapi import FastAPI

from qualify.attempts.router import router as attempts_router
from qualify.claims.router import router as claims_router
from qualify.leads.router import router as leads_router
from qualify.models import infra
from qualify.operators.router import router as operators_router
from qualify.policy import Policy
from qualify.qualification.router import router as qualification_router
from qualify.queue.router import router as queue_router
from shared.app import create_service_app
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    policy = Policy.from_settings(settings)
    app = create_service_app(
        settings,
        infra=infra,
        routers=[
            queue_router,
            claims_router,
            attempts_router,
            qualification_router,
            leads_router,
            operators_router,
        ],
        title="VO leads — qualify",
        description="The digital operators' work queue and qualification API.",
    )
    app.state.policy = policy
    return app
