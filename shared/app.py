"""The FastAPI application every service builds: lifespan-owned runtime (with the service's own
start-up hooks), problem+json errors, request context middleware, health, readiness, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from shared.clock import Clock, utcnow
from shared.db.infra import InfraTables
from shared.direct import DirectRoute, DirectRoutes
from shared.errors import install_problem_handlers
from shared.health import router as health_router
from shared.http import RequestContextMiddleware
from shared.logging import configure_logging
from shared.metrics import ServiceMetrics
from shared.openapi_problems import document_shared_answers
from shared.openapi_roles import publish_roles
from shared.runtime import Runtime, SettingsT

# Entered after the runtime opens, exited before it closes (in reverse order): builds and owns a
# per-process component (``runtime.provide(...)``), e.g. ingest's group commit.
LifespanHook = Callable[[Runtime[Any]], AbstractAsyncContextManager[None]]
# Edits the generated OpenAPI document once (e.g. a body a route reads itself).
OpenApiHook = Callable[[dict[str, Any]], None]


def create_service_app(
    settings: SettingsT,
    *,
    infra: InfraTables,
    routers: Sequence[APIRouter],
    title: str,
    description: str,
    clock: Clock = utcnow,
    lifespan_hooks: Sequence[LifespanHook] = (),
    openapi_hooks: Sequence[OpenApiHook] = (),
    direct_routes: Sequence[DirectRoute] = (),
    configure_logs: bool = True,
) -> FastAPI:
    if configure_logs:
        configure_logging(
            level=settings.log_level, json=settings.log_json, service=settings.service_name
        )
    metrics = ServiceMetrics(settings.service_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, infra, metrics, role="api", clock=clock)
        app.state.runtime = runtime
        try:
            async with AsyncExitStack() as hooks:
                for hook in lifespan_hooks:
                    await hooks.enter_async_context(hook(runtime))
                yield
        finally:
            await runtime.close()

    # No trailing-slash redirects: Starlette builds their Location from the Host header (an
    # open redirect to whatever host the caller names); an unknown path is a 404 problem.
    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
        # FastAPI's native OpenTelemetry is off: the services carry W3C trace context and
        # measure requests themselves (``shared.http``); left on, it looks up the global
        # providers on every request and wraps each dependency solve in an operation.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_problem_handlers(app)
    # One middleware: trace context, body limit, input guard, last resort, metrics, access log.
    # Hot operations it answers itself, beside their FastAPI route (``shared.direct``).
    direct = DirectRoutes(direct_routes)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        direct=direct,
    )
    app.include_router(health_router)
    for router in routers:
        app.include_router(router)
    direct.check(app)
    # Who may call each operation (``x-roles``), what the shared layer answers everywhere, then
    # the service's own edits.
    _customise_openapi(app, [publish_roles(app), document_shared_answers, *openapi_hooks])
    return app


def _customise_openapi(app: FastAPI, hooks: Sequence[OpenApiHook]) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for hook in hooks:
                hook(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
