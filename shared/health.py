"""``/healthz`` (the process answers), ``/readyz`` (database reachable, bus reachable and taking
this service's events), ``/metrics``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import func, select, text

from shared.api import RuntimeDep
from shared.bus.protocol import BusUnavailable
from shared.errors import ServiceUnavailable
from shared.redact import safe_error_text
from shared.runtime import Runtime

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
    if checks["database"] == "ok":
        relay = await _relay_check(runtime)
        if relay != "ok":
            checks["bus"] = relay if checks["bus"] == "ok" else f"{relay}; {checks['bus']}"
    if any(value != "ok" for value in checks.values()):
        raise ServiceUnavailable("A dependency is not ready.", checks=checks)
    return {"status": "ready", **checks}


async def _relay_check(runtime: Runtime[Any]) -> str:
    """The worker's relay publishes from the outbox, in another process: an event it failed to
    publish (``attempts`` > 0, still there) means the bus cannot take this service's events."""
    table = runtime.infra.outbox_event
    try:
        async with runtime.session_factory() as session:
            oldest = (
                await asyncio.wait_for(
                    session.execute(
                        select(table.c.attempts, table.c.last_error)
                        .where(table.c.attempts > 0)
                        .order_by(table.c.id)
                        .limit(1)
                    ),
                    _CHECK_TIMEOUT_S,
                )
            ).first()
    except Exception as exc:
        return safe_error_text(exc)
    if oldest is None:
        return "ok"
    return (
        f"cannot publish: the relay failed {oldest.attempts} time(s) on the oldest waiting event"
        f" ({oldest.last_error or 'no error text'})"
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    infra, service = runtime.infra, runtime.settings.service_name
    async with runtime.session_factory() as session:
        backlog = await session.scalar(select(func.count()).select_from(infra.outbox_event))
        dead = await session.scalar(select(func.count()).select_from(infra.dead_letter))
    runtime.metrics.outbox_backlog.labels(service).set(backlog or 0)
    runtime.metrics.dead_letters.labels(service).set(dead or 0)
    return Response(runtime.metrics.render(), media_type=runtime.metrics.content_type)
