"""Qualify: the digital operators' API (queue, claims, attempts, qualification)."""

from __future__ import annotations

from fastapi import FastAPI

from qualify.models import infra
from qualify.queue.router import router as queue_router
from shared.app import create_service_app
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        settings,
        infra=infra,
        routers=[queue_router],
        title="VO leads — qualify",
        description="The digital operators' work queue and qualification API.",
    )
