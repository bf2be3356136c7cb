"""HTTP API of canonical leads: canonical JSON or ADF 1.0 XML in, the canonical lead out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.deps import IntakeDep, JsonIntake, Reader, Submitter, json_intake
from ingest.intake.metrics import count_input
from ingest.intake.schemas import IntakeOut
from ingest.intake.service import settle
from ingest.leads import service as lead_service
from ingest.leads.group_commit import LeadGroupCommit
from ingest.leads.repository import LeadRepository
from ingest.leads.schemas import ContactOut, LeadAccepted, LeadIn, LeadOut, VehicleOut
from ingest.leads.service import Acceptance
from ingest.models import Lead
from ingest.raw_inputs.repository import RawInputRepository
from ingest.sources.adf.parser import AdfSyntaxError, parse_adf
from ingest.sources.limits import read_limited
from shared.api import AUTH_PROBLEMS, SessionDep, problem_responses
from shared.auth import Principal
from shared.db.session import session_scope
from shared.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    validation_errors,
)
from shared.outbox import Outbox

router = APIRouter(prefix="/v1/leads", tags=["leads"], responses=AUTH_PROBLEMS)

JSON = "application/json"
JSON_TYPES = ("application/json", "")
XML_TYPES = ("application/xml", "text/xml", "application/x-adf+xml")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LeadAccepted | IntakeOut,
    summary="Accept a canonical JSON lead or an ADF 1.0 XML document (replays are no-ops)",
    description="JSON answers `{id, status}`; ADF answers the intake result (one lead per "
    "prospect in `leads`, or the quarantine id when no prospect is usable).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "description": "LeadIn (docs/ingest.md)"}
                },
                "application/xml": {"schema": {"type": "string"}},
                "application/x-adf+xml": {"schema": {"type": "string"}},
            },
        }
    },
    responses=problem_responses(
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidRequest,
        s413="Body too large, 1 MiB by default",
        s415="Neither JSON nor ADF XML",
        s422="Malformed JSON/XML or invalid fields, each named",
    ),
)
async def post_lead(request: Request, _: Submitter, needs: IntakeDep) -> Response:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES and media_type not in XML_TYPES:
        raise UnsupportedMediaType("Send application/json or ADF as application/xml.")
    body = await read_limited(request, needs.settings.max_json_bytes)
    if media_type in XML_TYPES:
        runtime, now = needs.runtime, needs.now
        # Its own unit of work: the JSON path below needs no session.
        async with session_scope(runtime.session_factory) as session:
            intake = await _post_adf(session, body, media_type, outbox=runtime.outbox, now=now)
        count_input(runtime.metrics, "api", intake.status)
        return JSONResponse(intake.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    return await _accept_json(needs, body)


async def post_json_lead_directly(request: Request, _: Principal) -> Response:
    """``POST /v1/leads`` with an ``application/json`` body, answered by the request middleware
    (``shared.direct``, registered by ``ingest.app``): what ``post_lead`` does for JSON, without
    FastAPI's per-request machinery (about half the CPU of this, the hot path). The caller has
    passed ``SUBMIT`` already."""
    needs = await json_intake(request)
    return await _accept_json(needs, await read_limited(request, needs.settings.max_json_bytes))


async def _accept_json(needs: JsonIntake, body: bytes) -> Response:
    acceptance = await _post_json(needs.writer, body, needs.now)
    outcome = "duplicate" if acceptance.duplicate else "accepted"
    count_input(needs.runtime.metrics, "api", outcome)
    # ``LeadAccepted``, serialised here by orjson: FastAPI would validate the answer against the
    # response model again, and pydantic builds a model to dump two strings.
    return Response(
        orjson.dumps({"id": acceptance.lead_id, "status": outcome}),
        status_code=status.HTTP_202_ACCEPTED,
        media_type=JSON,
    )


async def _post_json(writer: LeadGroupCommit, body: bytes, now: datetime) -> Acceptance:
    try:
        # Parsed and validated in one pass by pydantic-core.
        lead_in = LeadIn.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid_lead(exc) from None
    return await writer.accept(lead_service.api_lead_row(lead_in, now=now))


_JSON_INVALID = {
    "field": "body",
    "location": "body",
    "type": "json_invalid",
    "message": "invalid JSON",
}


def _invalid_lead(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return InvalidRequest(
            "The body is not valid JSON.",
            errors=[_JSON_INVALID],
        )
    problems = validation_errors(errors)
    fields = ", ".join(sorted({error["field"] for error in problems}))
    return InvalidRequest(f"Invalid or missing fields: {fields}", errors=problems)


async def _post_adf(
    session: AsyncSession, body: bytes, media_type: str, *, outbox: Outbox, now: datetime
) -> IntakeOut:
    try:
        outcomes = parse_adf(body)
    except AdfSyntaxError:
        raise InvalidRequest(
            "The body is not well-formed XML (DTDs and entities are refused).",
            errors=[
                {"field": "body", "location": "body", "type": "xml_invalid", "message": "bad XML"}
            ],
        ) from None
    raw = await RawInputRepository.from_session(session).store(
        channel="api", content_type=media_type, body=body, received_at=now
    )
    return await settle(session, raw, outcomes, outbox=outbox, now=now)


@router.get(
    "/{lead_id}",
    response_model=LeadOut,
    summary="The canonical lead (its contact, message and answers only to managers and the DPO)",
    description="Data minimisation: an operator gets the lead without its contact details, "
    "message and source answers (`withheld` names them); operators read the contact of the "
    "leads they work on in qualify's queue. Managers, the data-protection officer (`dpo`) and "
    "admins get the whole lead.",
    responses=problem_responses(NotFound, s404="Unknown lead"),
)
async def get_lead(lead_id: str, caller: Reader, session: SessionDep) -> LeadOut:
    lead = await LeadRepository.from_session(session).get(lead_id)
    if lead is None:
        raise NotFound("No lead has this id.")
    whole = to_out(lead)
    if caller.reads_any_contact():
        return whole
    return whole.model_copy(
        update={
            "contact": None,
            "message": None,
            "relay_email": None,
            "extra": None,
            "withheld": ["contact", "message", "relay_email", "extra"],
        }
    )


def to_out(lead: Lead) -> LeadOut:
    return LeadOut(
        id=lead.id,
        kind=lead.kind,
        source=lead.source,
        source_ref=lead.source_ref,
        received_at=lead.received_at,
        contact=ContactOut(
            first_name=lead.first_name,
            last_name=lead.last_name,
            full_name=lead.full_name,
            email=lead.email,
            phone=lead.phone,
            email_key=lead.email_key,
            email_is_relay=bool(lead.email_is_relay),
            phone_raw=lead.phone_raw,
        ),
        vehicle=VehicleOut(**lead.vehicle),
        message=lead.message,
        relay_email=lead.relay_email,
        consents=dict(lead.consents or {}),
        extra=dict(lead.extra or {}),
        raw_input_id=lead.raw_input_id,
    )


def document_lead_in(schema: dict[str, Any]) -> None:
    """OpenAPI hook: ``POST /v1/leads`` reads its body itself (JSON or ADF), so ``LeadIn`` is
    published here as the schema of its JSON body."""
    lead_in = LeadIn.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(lead_in.pop("$defs", {}))
    components["LeadIn"] = lead_in
    body = schema["paths"]["/v1/leads"]["post"]["requestBody"]["content"]
    body[JSON]["schema"] = {"$ref": "#/components/schemas/LeadIn"}
