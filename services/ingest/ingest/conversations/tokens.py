"""The lead tokens (``shared.messaging.lead_tokens``) as a component of the API's runtime: the
key is ``INGEST_LEAD_TOKEN_KEY``, the same as qualify's, which signs what it sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ingest.settings import IngestSettings
from shared.messaging.lead_tokens import LeadTokens
from shared.runtime import Runtime


@asynccontextmanager
async def lead_tokens(runtime: Runtime[IngestSettings]) -> AsyncIterator[None]:
    """Lifespan hook: one ``LeadTokens`` per process (``LeadTokensDep``)."""
    runtime.provide(LeadTokens(runtime.settings.lead_token_key))
    yield
