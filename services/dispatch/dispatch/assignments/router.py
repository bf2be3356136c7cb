"""Managers' views and actions: the unassigned list, the board (unassigned, at risk, breached per
site), a lead's assignments and appointments, assigning and reassigning leads by hand, vehicle
sold, do-not-contact."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from dispatch.assignments import closing, manual
from dispatch.assignments.board import board as build_board
from dispatch.assignments.manual import Move, Moved
from dispatch.assignments.repository import AssignmentRepository
from dispatch.assignments.schemas import (
    AppointmentOut,
    AssignIn,
    AssignmentOut,
    Board,
    LeadState,
    MovedOut,
    ReassignAllIn,
    ReassignedAllOut,
    ReassignIn,
    VehicleSoldOut,
)
from dispatch.deps import Manager, NowDep, SettingsDep, Staff, StepDep
from dispatch.problems import (
    IllegalTransition,
    LeadClosed,
    LeadHeld,
    SellerAtCapacity,
    SellerUnavailable,
    UnknownAssignment,
    UnknownLead,
    UnknownSeller,
)
from shared.api import AUTH_PROBLEMS, SessionDep, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(prefix="/v1", tags=["managers"], responses=AUTH_PROBLEMS)

QUERY_PROBLEMS = problem_responses(InvalidRequest)
LEAD_PROBLEMS = problem_responses(UnknownLead)
ASSIGN_PROBLEMS = problem_responses(
    UnknownLead,
    LeadClosed,
    LeadHeld,
    SellerUnavailable,
    SellerAtCapacity,
    InvalidRequest,
    s404="Unknown lead or seller",
    s409=(
        "The lead is closed (lead-closed) or held by a seller (lead-held), or the chosen seller "
        "is inactive, absent (seller-unavailable) or full (seller-at-capacity)"
    ),
)
REASSIGN_PROBLEMS = problem_responses(
    UnknownAssignment,
    IllegalTransition,
    SellerUnavailable,
    SellerAtCapacity,
    InvalidRequest,
    s404="Unknown assignment or seller",
    s409=(
        "The assignment is not open (illegal-transition), or the chosen seller has the lead "
        "already, is inactive, absent (seller-unavailable) or full (seller-at-capacity)"
    ),
)
REASSIGN_ALL_PROBLEMS = problem_responses(
    UnknownSeller,
    SellerUnavailable,
    SellerAtCapacity,
    InvalidRequest,
    s404="Unknown seller (the path's or the body's)",
    s409=(
        "The chosen seller is the same, inactive, absent (seller-unavailable) or has no room for "
        "all the leads (seller-at-capacity)"
    ),
)


@router.get("/unassigned", response_model=list[LeadState], responses=QUERY_PROBLEMS)
async def unassigned(
    session: SessionDep,
    _: Manager,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[LeadState]:
    """Leads nobody could take (escalated): never lost, oldest first."""
    rows = await AssignmentRepository(session).unassigned_leads(site_id=site_id, limit=limit)
    return [LeadState.model_validate(row) for row in rows]


@router.get("/board", response_model=Board, responses=QUERY_PROBLEMS)
async def board(
    session: SessionDep,
    _: Manager,
    settings: SettingsDep,
    now: NowDep,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    at_risk_minutes: Annotated[int | None, Query(ge=0, le=24 * 60)] = None,
) -> Board:
    """Per site: unassigned leads, deadlines due within the margin (at risk), deadlines passed
    (breached): offers not accepted in time, first contacts overdue."""
    margin = timedelta(
        minutes=settings.at_risk_minutes if at_risk_minutes is None else at_risk_minutes
    )
    return await build_board(AssignmentRepository(session), now=now, margin=margin, site_id=site_id)


@router.get("/leads/{lead_id}", response_model=LeadState, responses=LEAD_PROBLEMS)
async def get_lead(lead_id: str, session: SessionDep, _: Staff) -> LeadState:
    lead = await AssignmentRepository(session).lead(lead_id)
    if lead is None:
        raise UnknownLead("No lead has this id.")
    return LeadState.model_validate(lead)


@router.get(
    "/leads/{lead_id}/assignments", response_model=list[AssignmentOut], responses=LEAD_PROBLEMS
)
async def lead_assignments(lead_id: str, session: SessionDep, _: Staff) -> list[AssignmentOut]:
    """Every assignment of the lead, open or ended, in the order they were offered."""
    repo = AssignmentRepository(session)
    if await repo.lead(lead_id) is None:
        raise UnknownLead("No lead has this id.")
    return [AssignmentOut.model_validate(row) for row in await repo.assignments_of_lead(lead_id)]


@router.post("/leads/{lead_id}/do-not-contact", response_model=LeadState, responses=LEAD_PROBLEMS)
async def do_not_contact(lead_id: str, step: StepDep, _: Staff) -> LeadState:
    """The prospect objects to contact: open offers are withdrawn and the lead is closed."""
    return LeadState.model_validate(await closing.do_not_contact(step, lead_id))


@router.post("/vehicles/{ad_ref}/sold", response_model=VehicleSoldOut, responses=QUERY_PROBLEMS)
async def vehicle_sold(
    ad_ref: Annotated[str, Path(max_length=100)], step: StepDep, _: Manager
) -> VehicleSoldOut:
    """The vehicle is sold (elsewhere): every open lead for it is closed, offers withdrawn."""
    return VehicleSoldOut(ad_ref=ad_ref, closed_leads=await closing.vehicle_sold(step, ad_ref))


@router.get(
    "/leads/{lead_id}/appointments", response_model=list[AppointmentOut], responses=LEAD_PROBLEMS
)
async def lead_appointments(lead_id: str, session: SessionDep, _: Staff) -> list[AppointmentOut]:
    """The lead's appointments in the order they were set: the scheduled one, those moved
    (rescheduled) and those the prospect missed."""
    repo = AssignmentRepository(session)
    if await repo.lead(lead_id) is None:
        raise UnknownLead("No lead has this id.")
    return [AppointmentOut.model_validate(row) for row in await repo.appointments_of_lead(lead_id)]


def _moved_out(moved: Moved) -> MovedOut:
    return MovedOut(
        lead_id=moved.lead.lead_id,
        lead_status=moved.lead.status,
        previous_assignment_id=moved.previous.id if moved.previous else None,
        previous_seller_id=moved.previous.seller_id if moved.previous else None,
        assignment=AssignmentOut.model_validate(moved.assignment) if moved.assignment else None,
    )


@router.post("/leads/{lead_id}/assign", response_model=MovedOut, responses=ASSIGN_PROBLEMS)
async def assign(lead_id: str, body: AssignIn, step: StepDep, caller: Manager) -> MovedOut:
    """Give a lead nobody holds (unassigned, escalated, or only offered) to the chosen seller:
    an offer (``mode=offer``) or at once (``mode=direct``). A pending offer is withdrawn."""
    move = Move(
        body.seller_id,
        body.mode,
        caller.token_id,
        allow_over_capacity=body.allow_over_capacity,
    )
    return _moved_out(await manual.assign(step, lead_id, move))


@router.post(
    "/assignments/{assignment_id}/reassign", response_model=MovedOut, responses=REASSIGN_PROBLEMS
)
async def reassign(
    assignment_id: str, body: ReassignIn, step: StepDep, caller: Manager
) -> MovedOut:
    """Take one open offer or assignment away from its seller (``assignment.withdrawn`` to their
    tool) and give the lead to another seller, or back to routing (``seller_id`` null). The
    lead's progress (contact, appointment) goes with it."""
    move = Move(
        body.seller_id,
        body.mode if body.seller_id is not None else "routing",
        caller.token_id,
        allow_over_capacity=body.allow_over_capacity,
    )
    return _moved_out(await manual.reassign(step, assignment_id, move))


@router.post(
    "/sellers/{seller_id}/reassign",
    response_model=ReassignedAllOut,
    responses=REASSIGN_ALL_PROBLEMS,
)
async def reassign_all(
    seller_id: str, body: ReassignAllIn, step: StepDep, caller: Manager
) -> ReassignedAllOut:
    """Every open offer and assignment of the seller (an absence) to another seller, or back to
    routing (``seller_id`` null); with ``absence``, the absence is recorded too."""
    move = Move(
        body.seller_id,
        body.mode if body.seller_id is not None else "routing",
        caller.token_id,
        reason="absence",
        allow_over_capacity=body.allow_over_capacity,
    )
    moved = await manual.reassign_all(step, seller_id, move)
    if body.absence is not None:
        # Last: the seller's row is locked only after their assignments (the one lock order).
        await manual.record_absence(step, seller_id, body.absence)
    return ReassignedAllOut(
        seller_id=seller_id,
        absence_recorded=body.absence is not None,
        moved=[_moved_out(item) for item in moved],
    )
