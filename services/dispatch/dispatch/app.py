"""Dispatch: routing of qualified leads to sellers under the contact schedule."""

from __future__ import annotations

from fastapi import FastAPI

from dispatch.models import infra
from shared.app import create_service_app
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        settings,
        infra=infra,
        routers=[],
        title="VO leads — dispatch",
        description="Routes qualified leads to in-store or full-web sellers.",
    )
