"""``POST /v1/sources/email``: one raw RFC 822 message (inbound-parse providers' raw MIME)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from ingest.deps import LeadTokensDep, SettingsDep, Submitter
from ingest.intake.metrics import count_input
from ingest.intake.schemas import IntakeOut
from ingest.sources.email.service import take_email
from ingest.sources.limits import read_limited
from shared.api import AUTH_PROBLEMS, NowDep, OutboxDep, SessionDep, problem_responses, runtime_of
from shared.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

router = APIRouter(prefix="/v1/sources", tags=["e-mail"], responses=AUTH_PROBLEMS)

MEDIA_TYPES = ("message/rfc822",)


@router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IntakeOut,
    summary="Take in one raw e-mail: a lead, a reply or bounce of a lead's conversation, an "
    "ignored record, or quarantine (all 202)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses=problem_responses(
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidRequest,
        s413="Over the e-mail limit, 15 MiB by default",
        s415="Content-Type is not message/rfc822",
        s422="Empty body",
    ),
)
async def post_email(
    request: Request,
    _: Submitter,
    session: SessionDep,
    settings: SettingsDep,
    tokens: LeadTokensDep,
    outbox: OutboxDep,
    now: NowDep,
) -> IntakeOut:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise UnsupportedMediaType("Send one message with Content-Type: message/rfc822.")
    body = await read_limited(request, settings.max_body_bytes)
    if not body.strip():
        raise InvalidRequest("The body is empty.")
    answer = await take_email(
        session,
        body,
        channel="email",
        tokens=tokens,
        limits=settings.mime_limits,
        outbox=outbox,
        now=now,
    )
    count_input(runtime_of(request).metrics, "email", answer.status)
    return answer
