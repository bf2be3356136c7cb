"""The Facebook webhook: verification handshake (GET) and signed notifications (POST).

Neither route takes a bearer token: Meta proves itself with the verify token (GET) and the
signature of the body (POST)."""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from ingest.deps import SettingsDep
from ingest.intake.metrics import count_input
from ingest.intake.schemas import IntakeOut
from ingest.sources.facebook.service import take_notification
from ingest.sources.facebook.signature import verify
from ingest.sources.limits import read_limited
from shared.api import NowDep, OutboxDep, SessionDep, problem_responses, runtime_of
from shared.errors import Forbidden, InvalidRequest, PayloadTooLarge, Unauthorized

router = APIRouter(prefix="/v1/sources/facebook", tags=["facebook"])


@router.get(
    "/webhook",
    response_class=PlainTextResponse,
    summary="Meta's verification handshake: echoes hub.challenge when the verify token matches",
    responses=problem_responses(Forbidden, s403="Wrong verify token or mode"),
)
async def verify_subscription(
    settings: SettingsDep,
    mode: Annotated[str, Query(alias="hub.mode", max_length=40)] = "",
    verify_token: Annotated[str, Query(alias="hub.verify_token", max_length=500)] = "",
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=200)] = "",
) -> PlainTextResponse:
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
    responses=problem_responses(
        Unauthorized,
        PayloadTooLarge,
        InvalidRequest,
        s401="Missing or bad signature; nothing stored",
        s422="Body is not a JSON object",
    ),
)
async def notification(
    request: Request, session: SessionDep, settings: SettingsDep, outbox: OutboxDep, now: NowDep
) -> IntakeOut:
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
    answer = await take_notification(session, body, document, outbox=outbox, now=now)
    count_input(runtime_of(request).metrics, "facebook", answer.status)
    return answer
