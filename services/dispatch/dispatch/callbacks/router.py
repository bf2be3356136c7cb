"""Sellers' call-backs on their assignments: accept, decline, contacted, appointment, sold, lost.

The caller is the seller's token (role ``seller``); a seller acting on another seller's
assignment gets 403, an illegal transition 409 (problem+json with the current status).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends

from dispatch.assignments.schemas import (
    AppointmentIn,
    AssignmentOut,
    ContactedIn,
    DeclineIn,
    LostIn,
)
from dispatch.assignments.service import DispatchService
from dispatch.clock import NowDep, SettingsDep
from dispatch.directory.repository import DirectoryRepository
from dispatch.models import Assignment, Seller
from shared.api import SessionDep, require_roles
from shared.auth import Principal
from shared.errors import Forbidden

router = APIRouter(prefix="/v1/assignments", tags=["call-backs"])

SellerPrincipal = Annotated[Principal, Depends(require_roles("seller"))]

PROBLEMS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Not a seller, or another seller's assignment (problem+json)"},
    404: {"description": "Unknown assignment (problem+json)"},
    409: {"description": "Illegal transition for the current status (problem+json)"},
    422: {"description": "Invalid body (problem+json)"},
}


async def _acting_seller(session: SessionDep, principal: Principal) -> Seller | None:
    """The seller behind the token; None for an admin (who may act on any assignment)."""
    seller = await DirectoryRepository.from_session(session).seller_by_token(principal.token_id)
    if seller is not None:
        return seller
    if "admin" in principal.roles:
        return None
    raise Forbidden("This token belongs to no seller of the directory.")


@dataclass(frozen=True)
class Callback:
    """The service of this request and the caller's own assignment (403 for another seller's)."""

    service: DispatchService
    assignment: Assignment


async def _callback(
    assignment_id: str,
    session: SessionDep,
    principal: SellerPrincipal,
    settings: SettingsDep,
    now: NowDep,
) -> Callback:
    service = DispatchService(session, settings, now)
    seller = await _acting_seller(session, principal)
    return Callback(service, await service.assignment_for(assignment_id, seller))


OwnAssignment = Annotated[Callback, Depends(_callback)]


@router.get("/{assignment_id}", response_model=AssignmentOut, responses=PROBLEMS)
async def get_assignment(own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(own.assignment)


@router.post("/{assignment_id}/accept", response_model=AssignmentOut, responses=PROBLEMS)
async def accept(own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await own.service.accept(own.assignment))


@router.post("/{assignment_id}/decline", response_model=AssignmentOut, responses=PROBLEMS)
async def decline(body: DeclineIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await own.service.decline(own.assignment, body.reason))


@router.post("/{assignment_id}/contacted", response_model=AssignmentOut, responses=PROBLEMS)
async def contacted(body: ContactedIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await own.service.contacted(own.assignment, body.channel))


@router.post("/{assignment_id}/appointment", response_model=AssignmentOut, responses=PROBLEMS)
async def appointment(body: AppointmentIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(
        await own.service.appointment(own.assignment, body.appointment_at, body.site_id)
    )


@router.post("/{assignment_id}/sold", response_model=AssignmentOut, responses=PROBLEMS)
async def sold(own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await own.service.sold(own.assignment))


@router.post("/{assignment_id}/lost", response_model=AssignmentOut, responses=PROBLEMS)
async def lost(body: LostIn, own: OwnAssignment) -> AssignmentOut:
    return AssignmentOut.model_validate(await own.service.lost(own.assignment, body.reason))
