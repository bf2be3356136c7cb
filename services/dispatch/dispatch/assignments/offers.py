"""Offers and routing: offer a lead to the next eligible seller (``assignment.offered`` to the
seller's tool, an accept deadline), or escalate it when nobody can take it now (a manager is
told, a reroute timer tries again later). A lead is never parked silently."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from dispatch.assignments.repository import NewLeadOffer
from dispatch.assignments.state import (
    LEAD_OFFERED,
    LEAD_UNASSIGNED,
    OFFERED,
    TRANSITIONS,
    is_routable,
)
from dispatch.assignments.step import SellerMessage, Step
from dispatch.models import Assignment, DispatchLead, Seller
from dispatch.routing.engine import Target, decide
from dispatch.routing.strategy import strategy_named
from dispatch.timers.kinds import ACCEPT_DEADLINE, REROUTE
from dispatch.timers.repository import timer_row, timer_written
from dispatch.webhooks.service import ESCALATED, OFFERED as OFFERED_WEBHOOK, message_written
from shared.events.payloads import AssignmentOfferedV1, EscalationReason, LeadEscalatedV1
from shared.outbox import event_row

log = structlog.get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OFFERED_EVENT = "assignment.offered.v1"


async def route(
    step: Step,
    lead: DispatchLead,
    *,
    reopen: bool = False,
    carry: Assignment | None = None,
    new_lead: bool = False,
    contact_keys: Sequence[str] | None = None,
) -> Assignment | None:
    """Offer the lead to the next eligible seller, or escalate it (never parked silently).

    ``reopen``: the lead's holder just gave it up (hand-back, a manager sending it back to
    routing): it is routed although it was assigned. The new offer carries the progress the
    lead made with an earlier seller (first contact, appointment), if it made any.
    ``new_lead``: the lead was recorded in this step, so it has no assignment yet (nothing to
    carry, nobody out of the round): its first routing reads none. A lead not written yet (a
    new ``DispatchLead``) is written once routing has decided, with its offer when it has one.
    ``contact_keys``: the contact hashes of such a lead, written with its offer (not when it
    is escalated: the caller writes them then)."""
    if lead.do_not_contact or not (reopen or is_routable(lead.status)):
        return None
    excluded: frozenset[str] = frozenset()
    if not new_lead:
        carry = carry or await step.assignments.last_with_progress(lead.lead_id)
        # Sellers offered this lead since its last escalation (and those who gave it back or
        # had it taken away since) are not offered it again this round.
        excluded = await step.assignments.sellers_out_of_round(
            lead.lead_id, lead.escalated_at or _EPOCH
        )
    decision = await decide(
        step.session,
        lead,
        settings=step.settings,
        strategy=strategy_named(step.settings.routing_strategy),
        now=step.now,
        excluded=excluded,
        stock=await step.vehicle(lead.vehicle_ad_ref),
    )
    lead.routed_to = decision.target.pool
    if decision.seller is None:
        await step.assignments.write_if_new(lead)
        await _escalate_unassigned(step, lead, decision.target)
        return None
    assignment = await offer(
        step,
        lead,
        decision.seller,
        decision.target,
        strategy=decision.strategy,
        carry=carry,
        contact_keys=contact_keys,
    )
    log.info(
        "dispatch.offered",
        lead_id=lead.lead_id,
        assignment_id=assignment.id,
        seller_id=decision.seller.id,
        pool=decision.target.pool,
        reason=decision.target.reason,
    )
    return assignment


async def new_assignment(
    step: Step,
    lead: DispatchLead,
    seller: Seller,
    target: Target,
    *,
    strategy: str,
    accept_due_at: datetime,
    carry: Assignment | None = None,
    assigned_by: str | None = None,
) -> Assignment:
    """A new open assignment of the lead to the seller (it counts in their load at once). With
    ``carry``, it takes over that assignment's progress (first contact, follow-ups, appointment)."""
    assignment = _assignment(
        step,
        lead,
        seller,
        target,
        strategy=strategy,
        accept_due_at=accept_due_at,
        carry=carry,
        assigned_by=assigned_by,
    )
    await _write_assignment(step, lead, seller, assignment)
    return assignment


async def _write_assignment(
    step: Step, lead: DispatchLead, seller: Seller, assignment: Assignment
) -> None:
    # A lead recorded in this step is written now, offered (one INSERT, before its assignment's).
    new = await step.assignments.write_if_new(lead)
    await step.assignments.insert(assignment)
    if not new:
        await step.assignments.flush()  # the lead's changes
    await step.assignments.count_offer(seller, step.now)  # then the seller's load


def _assignment(
    step: Step,
    lead: DispatchLead,
    seller: Seller,
    target: Target,
    *,
    strategy: str,
    accept_due_at: datetime,
    carry: Assignment | None,
    assigned_by: str | None,
) -> Assignment:
    """The new assignment's row (not written yet); the lead is updated at ``now``."""
    now = step.now
    lead.updated_at = now
    return Assignment(
        id=str(uuid.uuid4()),
        lead_id=lead.lead_id,
        seller_id=seller.id,
        site_id=target.site_id,
        status=OFFERED,
        is_open=True,
        strategy=strategy,
        offered_at=now,
        accept_due_at=accept_due_at,
        accepted_at=None,
        first_contact_due_at=None,
        contacted_at=carry.contacted_at if carry else None,
        contact_channel=carry.contact_channel if carry else None,
        appointment_at=carry.appointment_at if carry else None,
        followups_sent=carry.followups_sent if carry else 0,
        ended_at=None,
        end_reason=None,
        followups_from_at=carry.followups_from_at if carry else None,
        previous_assignment_id=carry.id if carry else None,
        assigned_by=assigned_by,
        sale_price_eur=None,
    )


async def offer(
    step: Step,
    lead: DispatchLead,
    seller: Seller,
    target: Target,
    *,
    strategy: str,
    carry: Assignment | None = None,
    assigned_by: str | None = None,
    contact_keys: Sequence[str] | None = None,
) -> Assignment:
    """Offer the lead to the seller: ``assignment.offered`` to their tool, an accept deadline
    (the schedule's minutes in the pool's business time), the ``assignment.offered.v1`` event.
    ``contact_keys``: the lead was recorded in this step and is not written yet; it is written
    with its offer, these contact hashes and the event with it (one statement on PostgreSQL)."""
    now = step.now
    schedule = await step.schedule(lead, target.site_id)
    accept_due = target.calendar.add_business_minutes(now, schedule.accept_within_minutes)
    # Set before the assignment's flush: the lead is written once.
    lead.status = LEAD_OFFERED
    lead.seller_id = None
    assignment = _assignment(
        step,
        lead,
        seller,
        target,
        strategy=strategy,
        accept_due_at=accept_due,
        carry=carry,
        assigned_by=assigned_by,
    )
    message = SellerMessage(seller, OFFERED_WEBHOOK, offer_data(step, lead, assignment))
    event = AssignmentOfferedV1(
        lead_id=lead.lead_id,
        assignment_id=assignment.id,
        seller_id=seller.id,
        site_id=target.site_id,
        offered_at=now,
        accept_due_at=accept_due,
        strategy=strategy,
    )
    if contact_keys is not None:
        await _write_new_lead_offer(step, lead, contact_keys, assignment, message, event)
        return assignment
    await _write_assignment(step, lead, seller, assignment)
    await step.timers.schedule(
        ACCEPT_DEADLINE,
        lead_id=lead.lead_id,
        assignment_id=assignment.id,
        due_at=accept_due,
        now=now,
    )
    await step.tell(lead.lead_id, message)
    await step.announce(lead.lead_id, _OFFERED_EVENT, event)
    return assignment


async def _write_new_lead_offer(
    step: Step,
    lead: DispatchLead,
    contact_keys: Sequence[str],
    assignment: Assignment,
    message: SellerMessage,
    event: AssignmentOfferedV1,
) -> None:
    """The new lead, its contact hashes, its offer, the seller's load, the accept deadline, the
    message to the seller's tool and the offer's event, written together
    (``write_new_lead_offer``)."""
    assert step.assignments.unwritten(lead)
    timer = timer_row(
        ACCEPT_DEADLINE,
        lead_id=lead.lead_id,
        assignment_id=assignment.id,
        due_at=assignment.accept_due_at,
        now=step.now,
    )
    queued = step.message(lead.lead_id, message)
    outbox = step.outbox
    staged = event_row(
        source=outbox.source, event_type=_OFFERED_EVENT, subject=lead.lead_id, payload=event
    )
    await step.assignments.write_new_lead_offer(
        NewLeadOffer(
            lead, contact_keys, assignment, message.seller, timer, queued.row, outbox.table, staged
        ),
        step.now,
    )
    timer_written(step.session, assignment.accept_due_at)
    message_written(step.session, queued, step.handoff)


def callback_urls(step: Step, assignment_id: str) -> dict[str, str]:
    """The call-back URL of each action, as the seller's tool must call it."""
    return {action: step.url(f"/v1/assignments/{assignment_id}/{action}") for action in TRANSITIONS}


def offer_data(step: Step, lead: DispatchLead, assignment: Assignment) -> dict[str, Any]:
    """The body of ``assignment.offered``: the lead, the offer, its deadline, the call-backs
    (and the progress the lead had, when it comes from another seller)."""
    data: dict[str, Any] = {
        "lead": lead.qualification,
        "assignment": {
            "id": assignment.id,
            "status": assignment.status,
            "site_id": assignment.site_id,
            "offered_at": assignment.offered_at.isoformat(),
        },
        "deadlines": {"accept_by": assignment.accept_due_at.isoformat()},
        "callbacks": callback_urls(step, assignment.id),
    }
    if assignment.previous_assignment_id is not None:
        data["progress"] = progress_data(assignment)
    if assignment.assigned_by is not None:
        data["assigned_by"] = "manager"
    return data


def progress_data(assignment: Assignment) -> dict[str, Any]:
    """How far the lead went with the seller(s) before: first contact, appointment, follow-ups."""
    return {
        "previous_assignment_id": assignment.previous_assignment_id,
        "contacted_at": _iso(assignment.contacted_at),
        "contact_channel": assignment.contact_channel,
        "appointment_at": _iso(assignment.appointment_at),
        "followups_sent": assignment.followups_sent,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def _escalate_unassigned(step: Step, lead: DispatchLead, target: Target) -> None:
    now = step.now
    newly = lead.status != LEAD_UNASSIGNED or lead.escalated_at is None
    lead.status = LEAD_UNASSIGNED
    lead.seller_id = None
    lead.escalated_at = now
    lead.escalation_reason = "no_seller_available"
    lead.updated_at = now
    await step.timers.cancel(now=now, lead_id=lead.lead_id, kinds=(REROUTE,))
    # Retry when the pool may have someone: after a delay in the pool's business time.
    retry_at = target.calendar.add_business_minutes(now, step.settings.reroute_after_minutes)
    await step.timers.schedule(REROUTE, lead_id=lead.lead_id, due_at=retry_at, now=now)
    if newly:
        await escalate(step, lead, "no_seller_available", target.site_id, None)


async def escalate(
    step: Step,
    lead: DispatchLead,
    reason: EscalationReason,
    site_id: str | None,
    assignment_id: str | None,
) -> None:
    """Tell the escalation target (the schedule's, else the site's manager) and the board."""
    schedule = await step.schedule(lead, site_id)
    target_id = schedule.escalation_seller_id
    manager = await step.directory.seller(target_id) if target_id else None
    message = None
    if manager is not None:
        message = SellerMessage(
            manager,
            ESCALATED,
            {
                "lead_id": lead.lead_id,
                "reason": reason,
                "site_id": site_id,
                "assignment_id": assignment_id,
                "board_url": step.url("/v1/board"),
            },
        )
    await step.announce(
        lead.lead_id,
        "lead.escalated.v1",
        LeadEscalatedV1(
            lead_id=lead.lead_id,
            reason=reason,
            site_id=site_id,
            assignment_id=assignment_id,
            escalation_target=manager.id if manager else None,
            escalated_at=step.now,
        ),
        message,
    )
    log.info("dispatch.escalated", lead_id=lead.lead_id, reason=reason)
