"""``/healthz`` (the process answers), ``/readyz`` (database and bus reachable), ``/metrics``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from sqlalchemy import func, select, text

from shared.api import RuntimeDep
from shared.bus.protocol import BusUnavailable
from shared.errors import ServiceUnavailable
from shared.redact import safe_error_text

router = APIRouter(tags=["operations"])

_CHECK_TIMEOUT_S = 5.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database and the bus answer",
    responses={503: {"description": "A dependency is down (problem+json)"}},
)
async def readyz(runtime: RuntimeDep) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with runtime.engine.connect() as connection:
            await asyncio.wait_for(connection.execute(text("SELECT 1")), _CHECK_TIMEOUT_S)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = safe_error_text(exc)
    try:
        await asyncio.wait_for(runtime.bus.ping(), _CHECK_TIMEOUT_S)
        checks["bus"] = "ok"
    except (BusUnavailable, TimeoutError) as exc:
        checks["bus"] = safe_error_text(exc)
    if any(value != "ok" for value in checks.values()):
        raise ServiceUnavailable("A dependency is not ready.", checks=checks)
    return {"status": "ready", **checks}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    infra, service = runtime.infra, runtime.settings.service_name
    async with runtime.session_factory() as session:
        backlog = await session.scalar(select(func.count()).select_from(infra.outbox_event))
        dead = await session.scalar(select(func.count()).select_from(infra.dead_letter))
    runtime.metrics.outbox_backlog.labels(service).set(backlog or 0)
    runtime.metrics.dead_letters.labels(service).set(dead or 0)
    return Response(runtime.metrics.render(), media_type=runtime.metrics.content_type)
