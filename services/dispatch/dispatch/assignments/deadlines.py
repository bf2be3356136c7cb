"""What the contact schedule's timers do when they fire (one handler per kind, handed to the
timer runner by the worker's wiring), and the follow-ups they keep planning.

Each handler returns the timer's outcome: what it did (``expired``, ``escalated``…) or
``obsolete`` when the assignment or lead has moved on since the timer was set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.assignments.offers import callback_urls, escalate, route
from dispatch.assignments.state import ACCEPTED, CONTACTED, EXPIRED, LEAD_UNASSIGNED, OFFERED
from dispatch.assignments.step import SellerMessage, Step
from dispatch.directory.calendars import in_legal_window
from dispatch.models import Assignment, Timer
from dispatch.settings import DispatchSettings
from dispatch.timers.kinds import (
    ACCEPT_DEADLINE,
    FIRST_CONTACT,
    FOLLOWUP,
    REROUTE,
    TimerKind,
    TimerOutcome,
)
from dispatch.timers.runner import TimerHandler
from dispatch.webhooks.service import FOLLOWUP_DUE, WITHDRAWN as WITHDRAWN_WEBHOOK
from shared.events.payloads import AssignmentEndedV1, LeadFollowupDueV1
from shared.outbox import Outbox


async def reroute(step: Step, timer: Timer) -> TimerOutcome:
    """An unassigned lead is offered again (everybody is eligible in the new round)."""
    lead = await step.lead(timer.lead_id)
    if lead.status != LEAD_UNASSIGNED:
        return "obsolete"
    assignment = await route(step, lead)
    return "offered" if assignment is not None else "still_unassigned"


async def expire_offer(step: Step, assignment: Assignment) -> TimerOutcome:
    """The offer was not accepted in time: withdrawn from the seller, offered to the next."""
    if assignment.status != OFFERED:
        return "obsolete"
    seller = await step.seller(assignment.seller_id)
    await step.end(
        assignment,
        seller,
        status=EXPIRED,
        reason="expired",
        event_type="assignment.expired.v1",
        event=AssignmentEndedV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            ended_at=step.now,
            reason="expired",
        ),
        message=SellerMessage(
            seller,
            WITHDRAWN_WEBHOOK,
            {"lead_id": assignment.lead_id, "assignment_id": assignment.id, "reason": "expired"},
        ),
    )
    await step.assignments.flush()
    await route(step, await step.lead(assignment.lead_id))
    return "expired"


async def first_contact_overdue(step: Step, assignment: Assignment) -> TimerOutcome:
    """Accepted but not contacted in time: escalated; the lead stays with its seller."""
    if assignment.status != ACCEPTED:
        return "obsolete"
    lead = await step.lead(assignment.lead_id)
    lead.escalated_at = step.now
    lead.escalation_reason = "first_contact_overdue"
    await escalate(step, lead, "first_contact_overdue", assignment.site_id, assignment.id)
    return "escalated"


async def followup_due(step: Step, assignment: Assignment) -> TimerOutcome:
    """J+n after the first contact, no appointment yet: remind the seller, plan the next."""
    if assignment.status != CONTACTED:
        return "obsolete"
    assignment.followups_sent += 1
    seller = await step.seller(assignment.seller_id)
    await step.announce(
        assignment.lead_id,
        "lead.followup-due.v1",
        LeadFollowupDueV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            followup_number=assignment.followups_sent,
            due_at=step.now,
        ),
        SellerMessage(
            seller,
            FOLLOWUP_DUE,
            {
                "lead_id": assignment.lead_id,
                "assignment_id": assignment.id,
                "followup_number": assignment.followups_sent,
                "call_from": in_legal_window(step.now).isoformat(),
                "callbacks": callback_urls(step, assignment.id),
            },
        ),
    )
    await schedule_followup(step, assignment)
    return "followup_sent"


async def schedule_followup(step: Step, assignment: Assignment) -> Timer | None:
    """The next follow-up (J+n after the first contact), inside a legal calling window."""
    lead = await step.lead(assignment.lead_id)
    schedule = await step.schedule(lead, assignment.site_id)
    if lead.followups_blocked or assignment.followups_sent >= len(schedule.followup_days):
        return None
    assert assignment.contacted_at is not None
    day = schedule.followup_days[assignment.followups_sent]
    due = in_legal_window(assignment.contacted_at + timedelta(days=day))
    return await step.timers.schedule(
        FOLLOWUP, lead_id=lead.lead_id, assignment_id=assignment.id, due_at=due, now=step.now
    )


AssignmentDeadline = Callable[[Step, Assignment], Awaitable[TimerOutcome]]
_ON_ASSIGNMENT: dict[TimerKind, AssignmentDeadline] = {
    ACCEPT_DEADLINE: expire_offer,
    FIRST_CONTACT: first_contact_overdue,
    FOLLOWUP: followup_due,
}


def timer_handlers(settings: DispatchSettings, outbox: Outbox) -> dict[TimerKind, TimerHandler]:
    """The timer runner's handler of each kind, each a step at the timer's firing time."""

    async def on_reroute(session: AsyncSession, timer: Timer, now: datetime) -> TimerOutcome:
        return await reroute(Step(session, settings, outbox, now), timer)

    def on_assignment(deadline: AssignmentDeadline) -> TimerHandler:
        async def handle(session: AsyncSession, timer: Timer, now: datetime) -> TimerOutcome:
            step = Step(session, settings, outbox, now)
            assert timer.assignment_id is not None
            # Locked: a call-back on the same assignment waits for the timer, or the reverse.
            assignment = await step.assignments.locked(timer.assignment_id)
            if assignment is None:
                raise LookupError("the timer's assignment is gone")
            return await deadline(step, assignment)

        return handle

    handlers = {kind: on_assignment(deadline) for kind, deadline in _ON_ASSIGNMENT.items()}
    return {REROUTE: on_reroute, **handlers}
