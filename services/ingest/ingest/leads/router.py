"""HTTP API of canonical leads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from ingest.leads import service as lead_service
from ingest.leads.repository import LeadRepository
from ingest.leads.schemas import ContactOut, LeadAccepted, LeadIn, LeadOut, VehicleOut
from ingest.models import Lead
from shared.api import SessionDep, require_roles
from shared.auth import Principal
from shared.errors import NotFound

router = APIRouter(prefix="/v1/leads", tags=["leads"])

Submitter = Annotated[Principal, Depends(require_roles("source", "operator", "manager"))]
Reader = Annotated[Principal, Depends(require_roles("operator", "manager"))]

_PROBLEMS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Missing role (problem+json)"},
    413: {"description": "Body too large (problem+json)"},
    422: {"description": "Invalid fields, each named (problem+json)"},
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LeadAccepted,
    summary="Accept a canonical lead (a replay of the same source and source_ref is a no-op)",
    responses=_PROBLEMS,
)
async def post_lead(lead_in: LeadIn, session: SessionDep, _: Submitter) -> LeadAccepted:
    acceptance = await lead_service.accept(session, lead_in=lead_in)
    return LeadAccepted(
        id=acceptance.lead_id, status="duplicate" if acceptance.duplicate else "accepted"
    )


@router.get(
    "/{lead_id}",
    response_model=LeadOut,
    summary="The canonical lead",
    responses={**_PROBLEMS, 404: {"description": "Unknown lead (problem+json)"}},
)
async def get_lead(lead_id: str, session: SessionDep, _: Reader) -> LeadOut:
    lead = await LeadRepository.from_session(session).get(lead_id)
    if lead is None:
        raise NotFound("No lead has this id.")
    return to_out(lead)


def to_out(lead: Lead) -> LeadOut:
    return LeadOut(
        id=lead.id,
        kind=lead.kind,  # type: ignore[arg-type]
        source=lead.source,  # type: ignore[arg-type]
        source_ref=lead.source_ref,
        received_at=lead.received_at,
        contact=ContactOut(
            first_name=lead.first_name,
            last_name=lead.last_name,
            full_name=lead.full_name,
            email=lead.email,
            phone=lead.phone,
        ),
        vehicle=VehicleOut(**lead.vehicle),
        message=lead.message,
        raw_input_id=lead.raw_input_id,
    )
