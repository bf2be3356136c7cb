"""The consumer of ``vo.access`` every service's worker runs (``<svc>.access``): people and
their tokens, applied to the service's own tables. The API processes see the change at their
next request (``shared.access.watch``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.access.apply import apply_person, apply_token_issued, apply_token_revoked
from shared.consumer import EventConsumer, Handler, build_consumer
from shared.db.infra import InfraTables
from shared.events import Envelope, Topics
from shared.events.access import PersonChangedV1, TokenIssuedV1, TokenRevokedV1
from shared.runtime import Runtime

PERSON_CHANGED = "access.person-changed.v1"
TOKEN_ISSUED = "access.token-issued.v1"
TOKEN_REVOKED = "access.token-revoked.v1"


def access_handlers(infra: InfraTables) -> dict[str, Handler]:
    async def on_person(session: AsyncSession, envelope: Envelope) -> None:
        await apply_person(session, infra, PersonChangedV1.model_validate(envelope.data))

    async def on_issued(session: AsyncSession, envelope: Envelope) -> None:
        await apply_token_issued(session, infra, TokenIssuedV1.model_validate(envelope.data))

    async def on_revoked(session: AsyncSession, envelope: Envelope) -> None:
        await apply_token_revoked(session, infra, TokenRevokedV1.model_validate(envelope.data))

    return {PERSON_CHANGED: on_person, TOKEN_ISSUED: on_issued, TOKEN_REVOKED: on_revoked}


def access_consumer(runtime: Runtime[Any]) -> EventConsumer:
    return build_consumer(
        runtime,
        name=f"{runtime.settings.service_name}.access",
        topics=[Topics.ACCESS],
        handlers=access_handlers(runtime.infra),
    )
