"""Managers move leads by hand: assign a lead nobody holds to a chosen seller, reassign one open
lead of a seller to another seller (or back to routing), or every open lead of a seller at once
(an absence, which may be recorded at the same time).

A move withdraws the current offer or assignment (``assignment.withdrawn`` to the old seller's
tool, ``assignment.withdrawn.v1`` with reason ``reassigned``), then, by ``mode``:

- ``offer``: the chosen seller is offered the lead (``assignment.offered``, an accept deadline),
  as routing would;
- ``direct``: the chosen seller holds it at once (``assignment.assigned`` to their tool;
  ``assignment.offered.v1``, ``assignment.accepted.v1`` and ``lead.assigned.v1`` at the same
  instant, so the SLA charges them no accept time), with the next deadline of the lead's progress;
- ``routing``: the lead is routed again, never to the old seller in this round.

The new assignment carries the progress the lead made (first contact, follow-ups sent,
appointment). ``assignment.reassigned.v1`` says who moved it, how and why. The loads of both
sellers change by atomic increments; the old assignment's timers are cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from dispatch.assignments.callbacks import announce_held
from dispatch.assignments.closing import withdraw
from dispatch.assignments.deadlines import start_work
from dispatch.assignments.offers import (
    callback_urls,
    new_assignment,
    offer,
    progress_data,
    route,
)
from dispatch.assignments.state import (
    LEAD_ASSIGNED,
    OPEN_STATUSES,
    REASSIGNED_REASON,
    WORKING,
    is_open_lead,
)
from dispatch.assignments.step import SellerMessage, Step
from dispatch.directory.calendars import full_web_calendar, is_absent, site_calendar
from dispatch.directory.schemas import Absence, merge_absence
from dispatch.models import Assignment, DispatchLead, Seller
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
from dispatch.routing.engine import Target
from dispatch.timers.kinds import REROUTE
from dispatch.webhooks.service import ASSIGNED
from shared.errors import InvalidRequest
from shared.events.payloads import (
    AssignmentOfferedV1,
    AssignmentReassignedV1,
    ManualMode,
    ManualReason,
)

log = structlog.get_logger(__name__)

MANUAL_STRATEGY = "manual"


@dataclass(frozen=True)
class Move:
    """What a manager asked: to whom (None: back to routing), how, why, and who asked."""

    seller_id: str | None
    mode: ManualMode
    by: str
    reason: ManualReason = "manager_choice"
    allow_over_capacity: bool = False

    def __post_init__(self) -> None:
        if (self.seller_id is None) != (self.mode == "routing"):
            raise ValueError("a seller is chosen unless the lead goes back to routing")


@dataclass(frozen=True)
class Moved:
    """One lead moved: the assignment taken away (if any) and the new one (None when routing
    found nobody and the lead was escalated)."""

    lead: DispatchLead
    previous: Assignment | None
    assignment: Assignment | None


async def assign(step: Step, lead_id: str, move: Move) -> Moved:
    """A lead nobody holds (unassigned, escalated, or only offered) to the chosen seller."""
    # Locks in the order every step takes them: the lead's open offers, then the lead.
    await step.assignments.locked_open_of_lead(lead_id)
    lead = await step.assignments.locked_lead(lead_id)
    if lead is None:
        raise UnknownLead("No lead has this id.")
    if not is_open_lead(lead.status):
        raise LeadClosed(f"The lead is {lead.status}.")
    if lead.status == LEAD_ASSIGNED:
        raise LeadHeld("A seller holds the lead: reassign their assignment instead.")
    # Read again under the lead's lock: an offer made meanwhile is seen (and withdrawn).
    offered_to = {a.seller_id for a in await step.assignments.locked_open_of_lead(lead_id)}
    if move.seller_id in offered_to:
        raise SellerUnavailable("The lead is offered to this seller already.")
    chosen = await _chosen(step, move)
    return await _move(step, lead, move, chosen)


async def reassign(step: Step, assignment_id: str, move: Move) -> Moved:
    """One open offer or assignment of a seller, to another seller or back to routing."""
    assignment = await step.assignments.locked(assignment_id)
    if assignment is None:
        raise UnknownAssignment("No assignment has this id.")
    if assignment.status not in OPEN_STATUSES:
        raise IllegalTransition(
            f"Cannot reassign an assignment in status {assignment.status}.",
            status_now=assignment.status,
            allowed_from=list(OPEN_STATUSES),
        )
    lead = await step.assignments.locked_lead(assignment.lead_id)
    assert lead is not None
    if move.seller_id == assignment.seller_id:
        raise SellerUnavailable("The lead is with this seller already.")
    chosen = await _chosen(step, move)
    return await _move(step, lead, move, chosen)


async def reassign_all(step: Step, seller_id: str, move: Move) -> list[Moved]:
    """Every open offer and assignment of the seller (oldest lead first), to another seller or
    back to routing."""
    seller = await step.directory.seller(seller_id)
    if seller is None:
        raise UnknownSeller("No seller has this id.")
    if move.seller_id == seller_id:
        raise SellerUnavailable("The leads are with this seller already.")
    chosen = await _chosen(step, move, extra=0)
    held = await step.assignments.locked_open_of_seller(seller_id)
    leads = [await step.assignments.locked_lead(lead_id) for lead_id in _unique_leads(held)]
    if chosen is not None and not move.allow_over_capacity:
        free = chosen.capacity - chosen.open_count
        if len(leads) > free:
            raise SellerAtCapacity(
                f"The chosen seller has room for {max(free, 0)} of the {len(leads)} leads."
            )
    moved = []
    for lead in sorted((lead for lead in leads if lead is not None), key=_age):
        moved.append(await _move(step, lead, move, chosen))
    log.info("dispatch.reassigned_all", seller_id=seller_id, leads=len(moved), mode=move.mode)
    return moved


async def record_absence(step: Step, seller_id: str, absence: Absence) -> None:
    """Add an absence to the seller's (422 when it overlaps one they have)."""
    seller = await step.directory.seller(seller_id)
    if seller is None:
        raise UnknownSeller("No seller has this id.")
    try:
        merged = merge_absence(seller.absences, absence)
    except ValueError:
        raise InvalidRequest(
            "Invalid field: absence",
            errors=[
                {
                    "field": "absence",
                    "location": "body",
                    "type": "value_error",
                    "message": "the absence overlaps one the seller has",
                }
            ],
        ) from None
    seller.absences = [entry.model_dump(mode="json") for entry in merged]
    seller.updated_at = step.now


async def _chosen(step: Step, move: Move, *, extra: int = 1) -> Seller | None:
    """The chosen seller, checked: known (404), active and not absent now (409), with room for
    ``extra`` more leads unless the manager allows more (409)."""
    if move.seller_id is None:
        return None
    seller = await step.directory.seller(move.seller_id)
    if seller is None:
        raise UnknownSeller("No seller has the seller_id.")
    if not seller.active or is_absent(seller, step.now):
        raise SellerUnavailable("The chosen seller is inactive or absent now.")
    if extra and not move.allow_over_capacity and seller.open_count + extra > seller.capacity:
        raise SellerAtCapacity("The chosen seller is at capacity.")
    return seller


async def _move(step: Step, lead: DispatchLead, move: Move, chosen: Seller | None) -> Moved:
    now = step.now
    current = await step.assignments.locked_open_of_lead(lead.lead_id)
    previous = next((a for a in current if a.status in WORKING), current[-1] if current else None)
    for held in current:
        await step.timers.cancel(now=now, assignment_id=held.id)
        await withdraw(step, held, REASSIGNED_REASON)
    await step.timers.cancel(now=now, lead_id=lead.lead_id, kinds=(REROUTE,))
    await step.assignments.flush()
    carry = await step.assignments.last_with_progress(lead.lead_id)
    assignment: Assignment | None
    if chosen is None:
        assignment = await route(step, lead, reopen=True, carry=carry)
    elif move.mode == "offer":
        assignment = await offer(
            step,
            lead,
            chosen,
            await _target(step, chosen),
            strategy=MANUAL_STRATEGY,
            carry=carry,
            assigned_by=move.by,
        )
    else:
        assignment = await _assign_directly(step, lead, chosen, carry, move.by)
    await step.announce(
        lead.lead_id,
        "assignment.reassigned.v1",
        AssignmentReassignedV1(
            lead_id=lead.lead_id,
            mode=move.mode,
            reason=move.reason,
            assignment_id=assignment.id if assignment else None,
            seller_id=assignment.seller_id if assignment else None,
            previous_assignment_id=previous.id if previous else None,
            previous_seller_id=previous.seller_id if previous else None,
            reassigned_by=move.by,
            reassigned_at=now,
        ),
    )
    log.info(
        "dispatch.reassigned",
        lead_id=lead.lead_id,
        mode=move.mode,
        previous_seller_id=previous.seller_id if previous else None,
        seller_id=assignment.seller_id if assignment else None,
    )
    return Moved(lead, previous, assignment)


async def _assign_directly(
    step: Step, lead: DispatchLead, seller: Seller, carry: Assignment | None, by: str
) -> Assignment:
    """The seller holds the lead at once: no offer to accept (offered, accepted and assigned at
    the same instant), the next deadline of the lead's progress, ``assignment.assigned``."""
    now = step.now
    target = await _target(step, seller)
    assignment = await new_assignment(
        step,
        lead,
        seller,
        target,
        strategy=MANUAL_STRATEGY,
        accept_due_at=now,
        carry=carry,
        assigned_by=by,
    )
    await start_work(step, assignment, lead, target.calendar)
    await step.announce(
        lead.lead_id,
        "assignment.offered.v1",
        AssignmentOfferedV1(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=seller.id,
            site_id=target.site_id,
            offered_at=now,
            accept_due_at=now,
            strategy=MANUAL_STRATEGY,
        ),
    )
    await announce_held(step, assignment, lead)
    await step.tell(
        lead.lead_id, SellerMessage(seller, ASSIGNED, await assigned_data(step, lead, assignment))
    )
    return assignment


async def assigned_data(step: Step, lead: DispatchLead, assignment: Assignment) -> dict[str, Any]:
    """The body of ``assignment.assigned``: the lead, the assignment, the progress it carries,
    its next deadline and the call-backs."""
    deadlines: dict[str, str] = {}
    if assignment.first_contact_due_at is not None:
        deadlines["first_contact_by"] = assignment.first_contact_due_at.isoformat()
    followup = (await step.timers.next_due([assignment.id], "followup")).get(assignment.id)
    if followup is not None:
        deadlines["next_followup_at"] = followup.isoformat()
    if assignment.appointment_at is not None:
        deadlines["appointment_at"] = assignment.appointment_at.isoformat()
    return {
        "lead": lead.qualification,
        "assignment": {
            "id": assignment.id,
            "status": assignment.status,
            "site_id": assignment.site_id,
            "offered_at": assignment.offered_at.isoformat(),
            "accepted_at": assignment.accepted_at.isoformat() if assignment.accepted_at else None,
        },
        "progress": progress_data(assignment),
        "deadlines": deadlines,
        "assigned_by": "manager",
        "callbacks": callback_urls(step, assignment.id),
    }


async def _target(step: Step, seller: Seller) -> Target:
    """Where the chosen seller works: their site (its calendar) or the full-web pool."""
    if seller.mode == "in_store" and seller.site_id is not None:
        site = await step.directory.site(seller.site_id)
        if site is not None:
            return Target("in_store", site, site_calendar(site), "manual")
    return Target("full_web", None, full_web_calendar(step.settings.full_web_hours), "manual")


def _unique_leads(assignments: Sequence[Assignment]) -> list[str]:
    """The leads of these assignments, once each, in lock order (by id)."""
    return sorted({assignment.lead_id for assignment in assignments})


def _age(lead: DispatchLead) -> tuple[Any, str]:
    return (lead.qualified_at, lead.lead_id)
