"""Offers and routing: offer a lead to the next eligible seller (``assignment.offered`` to the
seller's tool, an accept deadline), or escalate it when nobody can take it now (a manager is
told, a reroute timer tries again later). A lead is never parked silently."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from dispatch.assignments.state import (
    LEAD_OFFERED,
    LEAD_UNASSIGNED,
    OFFERED,
    TRANSITIONS,
    is_routable,
)
from dispatch.assignments.step import SellerMessage, Step
from dispatch.models import Assignment, DispatchLead, Seller
from dispatch.routing.engine import Decision, Target, decide
from dispatch.routing.strategy import strategy_named
from dispatch.timers.kinds import ACCEPT_DEADLINE, REROUTE
from dispatch.webhooks.service import ESCALATED, OFFERED as OFFERED_WEBHOOK
from shared.events.payloads import AssignmentOfferedV1, EscalationReason, LeadEscalatedV1

log = structlog.get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def route(step: Step, lead: DispatchLead) -> Assignment | None:
    """Offer the lead to the next eligible seller, or escalate it (never parked silently)."""
    if not is_routable(lead.status) or lead.do_not_contact:
        return None
    # Sellers offered this lead since its last escalation are not offered it again this round.
    excluded = await step.assignments.sellers_offered_since(
        lead.lead_id, lead.escalated_at or _EPOCH
    )
    decision = await decide(
        step.session,
        lead,
        settings=step.settings,
        strategy=strategy_named(step.settings.routing_strategy),
        now=step.now,
        excluded=excluded,
    )
    lead.routed_to = decision.target.pool
    if decision.seller is None:
        await _escalate_unassigned(step, lead, decision.target)
        return None
    return await _offer(step, lead, decision, decision.seller)


async def _offer(step: Step, lead: DispatchLead, decision: Decision, seller: Seller) -> Assignment:
    now = step.now
    target = decision.target
    schedule = await step.schedule(lead, target.site_id)
    accept_due = target.calendar.add_business_minutes(now, schedule.accept_within_minutes)
    assignment = Assignment(
        id=str(uuid.uuid4()),
        lead_id=lead.lead_id,
        seller_id=seller.id,
        site_id=target.site_id,
        status=OFFERED,
        is_open=True,
        strategy=decision.strategy,
        offered_at=now,
        accept_due_at=accept_due,
        accepted_at=None,
        first_contact_due_at=None,
        contacted_at=None,
        contact_channel=None,
        appointment_at=None,
        followups_sent=0,
        ended_at=None,
        end_reason=None,
    )
    step.assignments.add(assignment)
    # An atomic increment in SQL (concurrent offers to the same seller).
    seller.open_count = Seller.open_count + 1
    seller.last_offered_at = now
    lead.status = LEAD_OFFERED
    lead.updated_at = now
    await step.assignments.flush()
    await step.timers.schedule(
        ACCEPT_DEADLINE,
        lead_id=lead.lead_id,
        assignment_id=assignment.id,
        due_at=accept_due,
        now=now,
    )
    await step.announce(
        lead.lead_id,
        "assignment.offered.v1",
        AssignmentOfferedV1(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=seller.id,
            site_id=target.site_id,
            offered_at=now,
            accept_due_at=accept_due,
            strategy=decision.strategy,
        ),
        SellerMessage(seller, OFFERED_WEBHOOK, _offer_data(step, lead, assignment)),
    )
    log.info(
        "dispatch.offered",
        lead_id=lead.lead_id,
        assignment_id=assignment.id,
        seller_id=seller.id,
        pool=target.pool,
        reason=target.reason,
    )
    return assignment


def callback_urls(step: Step, assignment_id: str) -> dict[str, str]:
    """The call-back URL of each action, as the seller's tool must call it."""
    return {action: step.url(f"/v1/assignments/{assignment_id}/{action}") for action in TRANSITIONS}


def _offer_data(step: Step, lead: DispatchLead, assignment: Assignment) -> dict[str, Any]:
    return {
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
