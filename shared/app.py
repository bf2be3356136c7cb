"""The FastAPI application every service builds: lifespan-owned runtime, problem+json errors,
request context middleware, health, readiness and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from shared.db.infra import InfraTables
from shared.errors import install_problem_handlers
from shared.health import router as health_router
from shared.http import RequestContextMiddleware
from shared.logging import configure_logging
from shared.metrics import ServiceMetrics
from shared.runtime import Runtime
from shared.settings import ServiceSettings


def create_service_app(
    settings: ServiceSettings,
    *,
    infra: InfraTables,
    routers: Sequence[APIRouter],
    title: str,
    description: str,
    configure_logs: bool = True,
) -> FastAPI:
    if configure_logs:
        configure_logging(
            level=settings.log_level, json=settings.log_json, service=settings.service_name
        )
    metrics = ServiceMetrics(settings.service_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, infra, metrics, role="api")
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_middleware(
        RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes
    )
    app.include_router(health_router)
    for router in routers:
        app.include_router(router)
    return app
