"""Ingest: normalises every lead source into canonical leads on ``lead.received.v1``."""

from __future__ import annotations

from fastapi import FastAPI

from ingest.conversations.tokens import lead_tokens
from ingest.deps import SUBMIT
from ingest.leads.group_commit import lead_group_commit
from ingest.leads.router import document_lead_in, post_json_lead_directly, router as leads_router
from ingest.models import infra
from ingest.quarantine.router import router as quarantine_router
from ingest.settings import IngestSettings
from ingest.sources.email.router import router as email_router
from ingest.sources.facebook.router import router as facebook_router
from shared.app import create_service_app
from shared.clock import Clock, utcnow
from shared.direct import DirectRoute


def create_app(settings: IngestSettings, *, clock: Clock = utcnow) -> FastAPI:
    return create_service_app(
        settings,
        infra=infra,
        routers=[leads_router, email_router, facebook_router, quarantine_router],
        title="VO leads — ingest",
        description="Accepts leads from every source (canonical JSON, ADF, raw e-mail, Facebook "
        "webhook, IMAP) and publishes canonical lead events; quarantines what it cannot read.",
        clock=clock,
        # The JSON intake's group commit (``IntakeDep``) and the lead tokens that match
        # replies to leads (``LeadTokensDep``) live inside the runtime.
        lifespan_hooks=[lead_group_commit, lead_tokens],
        openapi_hooks=[document_lead_in],
        # The hot path: JSON leads skip FastAPI's per-request machinery (``shared.direct``);
        # the FastAPI route documents them and takes ADF.
        direct_routes=[
            DirectRoute("POST", "/v1/leads", "application/json", SUBMIT, post_json_lead_directly)
        ],
    )
