"""Qualify: the digital operators' API (queue, claims, attempts, call-backs, qualification,
reopening, messages to the prospect and their templates) and the routing policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from qualify.attempts.router import router as attempts_router
from qualify.callbacks.router import router as callbacks_router
from qualify.claims.router import claim_directly, router as claims_router
from qualify.deps import OPERATE
from qualify.leads.router import router as leads_router
from qualify.messages.channels import sms_provider
from qualify.messages.compose import Composer
from qualify.messages.public_router import router as public_router
from qualify.messages.receipts import ReceiptCallback
from qualify.messages.router import router as messages_router
from qualify.models import infra
from qualify.operators.router import router as operators_router
from qualify.policy import Policy
from qualify.qualification.router import (
    post_qualification_directly,
    router as qualification_router,
)
from qualify.queue.repository import hold_connections
from qualify.queue.router import list_queue_directly, router as queue_router
from qualify.queue.schemas import QueueQuery
from qualify.routing.router import router as routing_router
from qualify.settings import QualifySettings
from qualify.templates.router import router as templates_router
from shared.app import create_service_app
from shared.clock import Clock, utcnow
from shared.direct import DirectRoute
from shared.runtime import Runtime


def create_app(settings: QualifySettings, *, clock: Clock = utcnow) -> FastAPI:
    policy = Policy.from_settings(settings)

    @asynccontextmanager
    async def provide_policy(runtime: Runtime[Any]) -> AsyncIterator[None]:
        runtime.provide(policy)  # routers take it as PolicyDep
        runtime.provide(Composer(settings, policy))  # ComposerDep: messages, templates
        yield

    @asynccontextmanager
    async def provide_receipts(runtime: Runtime[Any]) -> AsyncIterator[None]:
        provider = sms_provider(settings)
        secret = settings.message_sms_receipt_secret
        runtime.provide(
            ReceiptCallback(provider, secret.get_secret_value() if secret is not None else None)
        )
        try:
            yield
        finally:
            await provider.aclose()

    return create_service_app(
        settings,
        infra=infra,
        routers=[
            queue_router,
            claims_router,
            attempts_router,
            qualification_router,
            leads_router,
            callbacks_router,
            operators_router,
            messages_router,
            templates_router,
            public_router,
            routing_router,
        ],
        title="VO leads — qualify",
        description="The digital operators' work queue and qualification API.",
        clock=clock,
        # The operators' claims, qualifications and polls run on held autocommit connections.
        lifespan_hooks=[provide_policy, provide_receipts, hold_connections],
        # The operators' hot path (their polls of the queue, a claim and a qualification per
        # lead) skips FastAPI's per-request machinery (``shared.direct``); the FastAPI routes
        # document it.
        direct_routes=[
            DirectRoute("GET", "/v1/queue", None, OPERATE, list_queue_directly, query=QueueQuery),
            DirectRoute("POST", "/v1/leads/{lead_id}/claim", None, OPERATE, claim_directly),
            DirectRoute(
                "POST",
                "/v1/leads/{lead_id}/qualification",
                "application/json",
                OPERATE,
                post_qualification_directly,
                json_first=True,
            ),
        ],
    )
