"""Managers' views and actions: the unassigned list, the board (unassigned, at risk, breached per
site), a lead's assignments, vehicle sold, do-not-contact."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from dispatch.assignments import closing
from dispatch.assignments.board import board as build_board
from dispatch.assignments.repository import AssignmentRepository
from dispatch.assignments.schemas import AssignmentOut, Board, LeadState, VehicleSoldOut
from dispatch.deps import Manager, NowDep, SettingsDep, Staff, StepDep
from dispatch.problems import UnknownLead
from shared.api import AUTH_PROBLEMS, SessionDep, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(prefix="/v1", tags=["managers"], responses=AUTH_PROBLEMS)

QUERY_PROBLEMS = problem_responses(InvalidRequest)
LEAD_PROBLEMS = problem_responses(UnknownLead)


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
