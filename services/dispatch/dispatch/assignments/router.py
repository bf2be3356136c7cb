"""Managers' views and actions: the unassigned list, the board (unassigned, at risk, breached per
site), a lead's assignments, vehicle sold, do-not-contact."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import and_, or_, select

from dispatch.assignments.schemas import (
    AssignmentOut,
    Board,
    BoardItem,
    LeadState,
    SiteBoard,
    VehicleSoldOut,
)
from dispatch.assignments.service import DispatchService, open_assignments
from dispatch.clock import NowDep, SettingsDep
from dispatch.models import Assignment, DispatchLead
from shared.api import SessionDep, require_roles
from shared.auth import Principal
from shared.errors import NotFound

router = APIRouter(prefix="/v1", tags=["managers"])

Manager = Annotated[Principal, Depends(require_roles("manager"))]
Staff = Annotated[Principal, Depends(require_roles("manager", "operator"))]

PROBLEMS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Missing role (problem+json)"},
    404: {"description": "Unknown lead (problem+json)"},
    422: {"description": "Invalid parameter (problem+json)"},
}


@router.get("/unassigned", response_model=list[LeadState], responses=PROBLEMS)
async def unassigned(
    session: SessionDep,
    _: Manager,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[LeadState]:
    """Leads nobody could take (escalated): never lost, oldest first."""
    query = (
        select(DispatchLead)
        .where(DispatchLead.status == "unassigned")
        .order_by(DispatchLead.qualified_at, DispatchLead.lead_id)
        .limit(limit)
    )
    if site_id is not None:
        query = query.where(DispatchLead.site_id == site_id)
    rows = (await session.scalars(query)).all()
    return [LeadState.model_validate(row) for row in rows]


@router.get("/board", response_model=Board, responses=PROBLEMS)
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
    per_site: dict[str | None, SiteBoard] = defaultdict(
        lambda: SiteBoard(site_id=None, unassigned=[], at_risk=[], breached=[])
    )

    def site_board(key: str | None) -> SiteBoard:
        entry = per_site[key]
        entry.site_id = key
        return entry

    leads = select(DispatchLead).where(DispatchLead.status == "unassigned")
    if site_id is not None:
        leads = leads.where(DispatchLead.site_id == site_id)
    for lead in (await session.scalars(leads.order_by(DispatchLead.qualified_at))).all():
        site_board(lead.site_id).unassigned.append(LeadState.model_validate(lead))

    horizon = now + margin
    pending = select(Assignment).where(
        Assignment.is_open.is_(True),
        or_(
            and_(Assignment.status == "offered", Assignment.accept_due_at <= horizon),
            and_(Assignment.status == "accepted", Assignment.first_contact_due_at <= horizon),
        ),
    )
    if site_id is not None:
        pending = pending.where(Assignment.site_id == site_id)
    for assignment in (await session.scalars(pending)).all():
        due: datetime | None = assignment.accept_due_at
        deadline = "accept"
        if assignment.status != "offered":
            deadline, due = "first_contact", assignment.first_contact_due_at
        item = BoardItem(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            site_id=assignment.site_id,
            status=assignment.status,
            deadline=deadline,
            due_at=due,
        )
        entry = site_board(assignment.site_id)
        (entry.breached if due is not None and due <= now else entry.at_risk).append(item)
    sites = sorted(per_site.values(), key=lambda entry: (entry.site_id is None, entry.site_id))
    return Board(generated_at=now, at_risk_minutes=int(margin.total_seconds() // 60), sites=sites)


@router.get("/leads/{lead_id}", response_model=LeadState, responses=PROBLEMS)
async def get_lead(lead_id: str, session: SessionDep, _: Staff) -> LeadState:
    lead = await session.get(DispatchLead, lead_id)
    if lead is None:
        raise NotFound("No lead has this id.")
    return LeadState.model_validate(lead)


@router.get("/leads/{lead_id}/assignments", response_model=list[AssignmentOut], responses=PROBLEMS)
async def lead_assignments(lead_id: str, session: SessionDep, _: Staff) -> list[AssignmentOut]:
    if await session.get(DispatchLead, lead_id) is None:
        raise NotFound("No lead has this id.")
    return [AssignmentOut.model_validate(row) for row in await open_assignments(session, lead_id)]


@router.post("/leads/{lead_id}/do-not-contact", response_model=LeadState, responses=PROBLEMS)
async def do_not_contact(
    lead_id: str, session: SessionDep, _: Staff, settings: SettingsDep, now: NowDep
) -> LeadState:
    """The prospect objects to contact: open offers are withdrawn and the lead is closed."""
    lead = await DispatchService(session, settings, now).do_not_contact(lead_id)
    return LeadState.model_validate(lead)


@router.post("/vehicles/{ad_ref}/sold", response_model=VehicleSoldOut, responses=PROBLEMS)
async def vehicle_sold(
    ad_ref: Annotated[str, Path(max_length=100)],
    session: SessionDep,
    _: Manager,
    settings: SettingsDep,
    now: NowDep,
) -> VehicleSoldOut:
    """The vehicle is sold (elsewhere): every open lead for it is closed, offers withdrawn."""
    closed = await DispatchService(session, settings, now).vehicle_sold(ad_ref)
    return VehicleSoldOut(ad_ref=ad_ref, closed_leads=closed)
