"""Closing leads from outside their sellers' call-backs: the vehicle is sold (here or
elsewhere), or the prospect objects to contact. Open offers and assignments are withdrawn (the
sellers' tools are told) and the lead is lost."""

from __future__ import annotations

from dispatch.assignments.state import LEAD_LOST, WITHDRAWN, is_open_lead
from dispatch.assignments.step import SellerMessage, Step
from dispatch.models import Assignment, DispatchLead
from dispatch.problems import UnknownLead
from dispatch.webhooks.service import WITHDRAWN as WITHDRAWN_WEBHOOK
from shared.events.payloads import AssignmentEndedV1, LeadLostV1, LostReason


async def vehicle_sold(step: Step, ad_ref: str, *, except_lead: str | None = None) -> int:
    """The vehicle is sold: close every other open lead for it (offers withdrawn)."""
    stock = await step.directory.vehicle(ad_ref)
    if stock is not None and stock.sold_at is None:
        stock.sold_at = step.now
        stock.updated_at = step.now
    closed = 0
    for lead in await step.assignments.open_leads_for_vehicle(ad_ref):
        if lead.lead_id == except_lead:
            continue
        await close_lead(step, lead, "vehicle_sold")
        closed += 1
    return closed


async def is_vehicle_sold(step: Step, ad_ref: str | None) -> bool:
    stock = await step.vehicle(ad_ref)
    return stock is not None and stock.sold_at is not None


async def do_not_contact(step: Step, lead_id: str) -> DispatchLead:
    lead = await step.assignments.lead(lead_id)
    if lead is None:
        raise UnknownLead("No lead has this id.")
    lead.do_not_contact = True
    if is_open_lead(lead.status):
        await close_lead(step, lead, "do_not_contact")
    return lead


async def close_lead(step: Step, lead: DispatchLead, reason: LostReason) -> None:
    """Withdraw open offers and assignments of the lead and close it as lost."""
    open_ones = await step.assignments.open_assignments(lead.lead_id)
    for assignment in open_ones:
        await withdraw(step, assignment, reason)
    lead.status = LEAD_LOST
    lead.close_reason = reason
    lead.updated_at = step.now
    await step.timers.cancel(now=step.now, lead_id=lead.lead_id)
    last = open_ones[-1] if open_ones else None
    await step.announce(
        lead.lead_id,
        "lead.lost.v1",
        LeadLostV1(
            lead_id=lead.lead_id,
            assignment_id=last.id if last else None,
            seller_id=last.seller_id if last else None,
            reason=reason,
            lost_at=step.now,
        ),
    )


async def withdraw(step: Step, assignment: Assignment, reason: str) -> None:
    """Take an open offer or assignment away from its seller: their tool is told
    (``assignment.withdrawn``) and ``assignment.withdrawn.v1`` is published. The timers of the
    assignment are the caller's business."""
    seller = await step.seller(assignment.seller_id)
    await step.end(
        assignment,
        seller,
        status=WITHDRAWN,
        reason=reason,
        event_type="assignment.withdrawn.v1",
        event=AssignmentEndedV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            ended_at=step.now,
            reason=reason,
        ),
        message=SellerMessage(
            seller,
            WITHDRAWN_WEBHOOK,
            {"lead_id": assignment.lead_id, "assignment_id": assignment.id, "reason": reason},
        ),
    )
