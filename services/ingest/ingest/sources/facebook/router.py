"""The Facebook webhook: verification handshake (GET) and signed notifications (POST)."""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Ignore, Outcome
from ingest.intake.metrics import count_input
from ingest.intake.schemas import IntakeOut
from ingest.intake.service import settle
from ingest.models import RawInput
from ingest.raw_inputs.repository import RawInputRepository
from ingest.settings import IngestSettings
from ingest.sources.facebook.fetcher import enqueue_fetch
from ingest.sources.facebook.notifications import read_notification
from ingest.sources.facebook.signature import verify
from ingest.sources.limits import read_limited, settings_of
from shared.api import SessionDep, runtime_of
from shared.errors import Forbidden, InvalidRequest, Unauthorized

router = APIRouter(prefix="/v1/sources/facebook", tags=["facebook"])


@router.get(
    "/webhook",
    response_class=PlainTextResponse,
    summary="Meta's verification handshake: echoes hub.challenge when the verify token matches",
    responses={403: {"description": "Wrong verify token or mode (problem+json)"}},
)
async def verify_subscription(
    request: Request,
    mode: Annotated[str, Query(alias="hub.mode", max_length=40)] = "",
    verify_token: Annotated[str, Query(alias="hub.verify_token", max_length=500)] = "",
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=200)] = "",
) -> PlainTextResponse:
    settings = settings_of(request)
    expected = settings.facebook_verify_token
    if (
        expected is None
        or mode != "subscribe"
        or not hmac.compare_digest(expected.get_secret_value().encode(), verify_token.encode())
    ):
        raise Forbidden("The verify token or mode does not match.")
    return PlainTextResponse(challenge)


@router.post(
    "/webhook",
    response_model=IntakeOut,
    summary="Lead Ads and Messenger notifications, signed with X-Hub-Signature-256",
    description="Answers 200 (Meta retries anything else): leads of Messenger messages are "
    "accepted at once; each `leadgen_id` is stored and fetched from the Graph API by the worker.",
    responses={
        401: {"description": "Missing or bad signature; nothing stored (problem+json)"},
        413: {"description": "Body too large (problem+json)"},
        422: {"description": "Body is not a JSON object (problem+json)"},
    },
)
async def notification(request: Request, session: SessionDep) -> IntakeOut:
    settings: IngestSettings = settings_of(request)
    body = await read_limited(request, settings.max_json_bytes)
    secrets = [secret.get_secret_value() for secret in settings.facebook_app_secrets]
    if not verify(body, request.headers.get("x-hub-signature-256"), secrets):
        raise Unauthorized("Missing or invalid X-Hub-Signature-256.")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        raise InvalidRequest("The body is not a JSON object.")
    raw = await RawInputRepository.from_session(session).store(
        channel="facebook", content_type="application/json", body=body
    )
    answer = await process_notification(session, raw, document)
    count_input(runtime_of(request).metrics, "facebook", answer.status)
    return answer


async def process_notification(session: AsyncSession, raw: RawInput, document: object) -> IntakeOut:
    """Stage a fetch per new ``leadgen_id``; settle Messenger messages at once."""
    parsed = read_notification(document)
    staged = 0
    for ref in parsed.leadgen:
        staged += await enqueue_fetch(session, ref, raw_input_id=raw.id)
    outcomes: list[Outcome] = [o for o in parsed.messages if not isinstance(o, Ignore)]
    if outcomes:
        answer = await settle(session, raw, outcomes)
        answer.pending_fetches = staged
        return answer
    if parsed.leadgen:
        raw.outcome = "fetching"
        return IntakeOut(status="pending", raw_input_id=raw.id, pending_fetches=staged)
    ignores = [o for o in parsed.messages if isinstance(o, Ignore)]
    return await settle(session, raw, ignores[:1] or [Ignore("no_lead_in_notification")])
