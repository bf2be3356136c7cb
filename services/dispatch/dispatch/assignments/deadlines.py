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
from dispatch.assignments.state import (
    ACCEPTED,
    CONTACTED,
    EXPIRED,
    LEAD_ASSIGNED,
    LEAD_UNASSIGNED,
    OFFERED,
    working_status,
)
from dispatch.assignments.step import SellerMessage, Step
from dispatch.models import Assignment, DispatchLead, Timer
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
from dispatch.webhooks.handoff import WebhookHandoff
from dispatch.webhooks.service import FOLLOWUP_DUE, WITHDRAWN as WITHDRAWN_WEBHOOK
from shared.business_time import BusinessCalendar
from shared.events.payloads import AssignmentEndedV1, LeadFollowupDueV1
from shared.outbox import Outbox


async def reroute(step: Step, timer: Timer) -> TimerOutcome:
    """An unassigned lead is offered again (everybody is eligible in the new round)."""
    # Locked: a manager assigning the lead at the same moment waits, or makes this obsolete.
    lead = await step.assignments.locked_lead(timer.lead_id)
    if lead is None:
        raise LookupError("the timer's lead is gone")
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
    lead = await step.lead(assignment.lead_id)
    if lead.followups_blocked:
        return "obsolete"  # an objection arrived while the timer was firing
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
                "call_from": step.in_legal_window(step.now, lead).isoformat(),
                "callbacks": callback_urls(step, assignment.id),
            },
        ),
    )
    await schedule_followup(step, assignment)
    return "followup_sent"


async def schedule_followup(step: Step, assignment: Assignment) -> None:
    """The next follow-up (J+n after the first contact, or after the last no-show), inside a
    legal calling window."""
    lead = await step.lead(assignment.lead_id)
    schedule = await step.schedule(lead, assignment.site_id)
    if lead.followups_blocked or assignment.followups_sent >= len(schedule.followup_days):
        return
    since = assignment.followups_from_at or assignment.contacted_at
    assert since is not None
    day = schedule.followup_days[assignment.followups_sent]
    due = step.in_legal_window(since + timedelta(days=day), lead)
    await step.timers.schedule(
        FOLLOWUP, lead_id=lead.lead_id, assignment_id=assignment.id, due_at=due, now=step.now
    )


async def start_work(
    step: Step, assignment: Assignment, lead: DispatchLead, calendar: BusinessCalendar
) -> None:
    """The seller now holds the lead (accepted, or assigned by a manager): its status follows
    the lead's progress and the contact schedule's next deadline is set. Not contacted yet: a
    first contact due within the schedule's minutes (business time of ``calendar``, moved into
    the legal calling window). Contacted: the next follow-up. Appointment: none (the
    appointment is the next step)."""
    now = step.now
    assignment.status = working_status(
        assignment.contacted_at is not None, assignment.appointment_at is not None
    )
    assignment.accepted_at = now
    lead.status = LEAD_ASSIGNED
    lead.seller_id = assignment.seller_id
    lead.updated_at = now
    await step.timers.cancel(now=now, assignment_id=assignment.id)
    await step.timers.cancel(now=now, lead_id=lead.lead_id, kinds=(REROUTE,))
    if assignment.status == ACCEPTED:
        schedule = await step.schedule(lead, assignment.site_id)
        due = step.in_legal_window(
            calendar.add_business_minutes(now, schedule.first_contact_within_minutes), lead
        )
        assignment.first_contact_due_at = due
        await step.timers.schedule(
            FIRST_CONTACT, lead_id=lead.lead_id, assignment_id=assignment.id, due_at=due, now=now
        )
    elif assignment.status == CONTACTED:
        await schedule_followup(step, assignment)


AssignmentDeadline = Callable[[Step, Assignment], Awaitable[TimerOutcome]]
_ON_ASSIGNMENT: dict[TimerKind, AssignmentDeadline] = {
    ACCEPT_DEADLINE: expire_offer,
    FIRST_CONTACT: first_contact_overdue,
    FOLLOWUP: followup_due,
}


def timer_handlers(
    settings: DispatchSettings, outbox: Outbox, handoff: WebhookHandoff | None = None
) -> dict[TimerKind, TimerHandler]:
    """The timer runner's handler of each kind, each a step at the timer's firing time
    (``handoff``: the worker's webhook sender, which its messages are claimed at birth for)."""

    async def on_reroute(session: AsyncSession, timer: Timer, now: datetime) -> TimerOutcome:
        return await reroute(Step(session, settings, outbox, now, handoff), timer)

    def on_assignment(deadline: AssignmentDeadline) -> TimerHandler:
        async def handle(session: AsyncSession, timer: Timer, now: datetime) -> TimerOutcome:
            step = Step(session, settings, outbox, now, handoff)
            assert timer.assignment_id is not None
            # Locked: a call-back on the same assignment waits for the timer, or the reverse.
            assignment = await step.assignments.locked(timer.assignment_id)
            if assignment is None:
                raise LookupError("the timer's assignment is gone")
            return await deadline(step, assignment)

        return handle

    handlers = {kind: on_assignment(deadline) for kind, deadline in _ON_ASSIGNMENT.items()}
    return {REROUTE: on_reroute, **handlers}
