"""``POST /v1/sources/email``: one raw RFC 822 message (inbound-parse providers' raw MIME)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from ingest.intake.metrics import count_input
from ingest.intake.schemas import IntakeOut
from ingest.sources.email.service import take_email
from ingest.sources.limits import read_limited, settings_of
from shared.api import SessionDep, require_roles, runtime_of
from shared.auth import Principal
from shared.errors import InvalidRequest, UnsupportedMediaType

router = APIRouter(prefix="/v1/sources", tags=["e-mail"])

Submitter = Annotated[Principal, Depends(require_roles("source", "operator", "manager"))]
MEDIA_TYPES = ("message/rfc822",)


@router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IntakeOut,
    summary="Take in one raw e-mail: a lead, an ignored record, or quarantine (all 202)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        401: {"description": "No valid token (problem+json)"},
        413: {"description": "Over the e-mail limit, 15 MiB by default (problem+json)"},
        415: {"description": "Content-Type is not message/rfc822 (problem+json)"},
        422: {"description": "Empty body (problem+json)"},
    },
)
async def post_email(request: Request, session: SessionDep, _: Submitter) -> IntakeOut:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise UnsupportedMediaType("Send one message with Content-Type: message/rfc822.")
    body = await read_limited(request, settings_of(request).max_body_bytes)
    if not body.strip():
        raise InvalidRequest("The body is empty.")
    answer = await take_email(session, body, channel="email")
    count_input(runtime_of(request).metrics, "email", answer.status)
    return answer
