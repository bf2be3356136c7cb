"""Ingest: normalises every lead source into canonical leads on ``lead.received.v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ingest.leads.group_commit import LeadGroupCommit
from ingest.leads.router import router as leads_router
from ingest.leads.schemas import LeadIn
from ingest.models import infra
from ingest.quarantine.router import router as quarantine_router
from ingest.sources.email.router import router as email_router
from ingest.sources.facebook.router import router as facebook_router
from shared.app import create_service_app
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    app = create_service_app(
        settings,
        infra=infra,
        routers=[leads_router, email_router, facebook_router, quarantine_router],
        title="VO leads — ingest",
        description="Accepts leads from every source (canonical JSON, ADF, raw e-mail, Facebook "
        "webhook, IMAP) and publishes canonical lead events; quarantines what it cannot read.",
    )
    _document_lead_in(app)
    _run_group_commit(app)
    return app


def _run_group_commit(app: FastAPI) -> None:
    """The JSON intake's group commit lives inside the runtime's lifespan: made once the engine
    exists, closed (its batch in flight written) before the engine is disposed."""
    runtime_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_lifespan(app):
            writer = app.state.lead_group_commit = LeadGroupCommit(app.state.runtime.engine)
            try:
                yield
            finally:
                await writer.close()

    app.router.lifespan_context = lifespan


def _document_lead_in(app: FastAPI) -> None:
    """``POST /v1/leads`` reads its body itself (JSON or ADF): publish ``LeadIn`` as its JSON
    schema in the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        lead_in = LeadIn.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(lead_in.pop("$defs", {}))
        components["LeadIn"] = lead_in
        body = schema["paths"]["/v1/leads"]["post"]["requestBody"]["content"]
        body["application/json"]["schema"] = {"$ref": "#/components/schemas/LeadIn"}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
