"""The sellers' call-backs on their assignments: accept, decline, contacted, appointment, sold,
lost. Each checks the transition (``state.TRANSITIONS``; 409 otherwise), moves the assignment
and the lead, keeps the contact schedule's timers and publishes its event."""

from __future__ import annotations

from datetime import datetime

from dispatch.assignments.closing import vehicle_sold
from dispatch.assignments.deadlines import schedule_followup
from dispatch.assignments.offers import route
from dispatch.assignments.state import (
    ACCEPTED,
    APPOINTMENT,
    CONTACTED,
    DECLINED,
    LEAD_ASSIGNED,
    LEAD_LOST,
    LEAD_WON,
    LOST,
    SOLD,
    require_transition,
)
from dispatch.assignments.step import Step
from dispatch.directory.calendars import in_legal_window
from dispatch.models import Assignment
from dispatch.problems import (
    IllegalTransition,
    NotYourAssignment,
    UnknownAssignment,
    UnknownSite,
)
from dispatch.routing.engine import target_for
from dispatch.timers.kinds import FIRST_CONTACT, FOLLOWUP, REROUTE
from shared.auth import Principal
from shared.errors import InvalidRequest
from shared.events.payloads import (
    AssignmentAcceptedV1,
    AssignmentDeclinedV1,
    ContactChannel,
    DeclineReason,
    LeadAppointmentSetV1,
    LeadAssignedV1,
    LeadContactedV1,
    LeadLostV1,
    LeadWonV1,
    LostReason,
)


async def own_assignment(step: Step, assignment_id: str, caller: Principal) -> Assignment:
    """The assignment, locked, if the caller's seller holds it; an admin may act on any."""
    seller = await step.directory.seller_by_token(caller.token_id)
    if seller is None and "admin" not in caller.roles:
        raise NotYourAssignment("This token belongs to no seller of the directory.")
    return await locked_assignment(step, assignment_id, seller_id=seller.id if seller else None)


async def locked_assignment(
    step: Step, assignment_id: str, *, seller_id: str | None = None
) -> Assignment:
    """The assignment, locked; with ``seller_id``, only if that seller holds it."""
    assignment = await step.assignments.locked(assignment_id)
    if assignment is None:
        raise UnknownAssignment("No assignment has this id.")
    if seller_id is not None and assignment.seller_id != seller_id:
        raise NotYourAssignment("This assignment belongs to another seller.")
    return assignment


async def accept(step: Step, assignment: Assignment) -> Assignment:
    require_transition("accept", assignment.status)
    now = step.now
    if now > assignment.accept_due_at:
        raise IllegalTransition("The offer's accept deadline has passed.")
    lead = await step.lead(assignment.lead_id)
    schedule = await step.schedule(lead, assignment.site_id)
    target = await target_for(step.session, lead, step.settings, now)
    due = in_legal_window(
        target.calendar.add_business_minutes(now, schedule.first_contact_within_minutes)
    )
    assignment.status = ACCEPTED
    assignment.accepted_at = now
    assignment.first_contact_due_at = due
    lead.status = LEAD_ASSIGNED
    lead.seller_id = assignment.seller_id
    lead.updated_at = now
    await step.timers.cancel(now=now, assignment_id=assignment.id)
    await step.timers.cancel(now=now, lead_id=lead.lead_id, kinds=(REROUTE,))
    await step.timers.schedule(
        FIRST_CONTACT, lead_id=lead.lead_id, assignment_id=assignment.id, due_at=due, now=now
    )
    await step.announce(
        lead.lead_id,
        "assignment.accepted.v1",
        AssignmentAcceptedV1(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            accepted_at=now,
            first_contact_due_at=due,
        ),
    )
    await step.announce(
        lead.lead_id,
        "lead.assigned.v1",
        LeadAssignedV1(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            site_id=assignment.site_id,
            assigned_at=now,
        ),
    )
    return assignment


async def decline(step: Step, assignment: Assignment, reason: DeclineReason) -> Assignment:
    require_transition("decline", assignment.status)
    seller = await step.seller(assignment.seller_id)
    await step.timers.cancel(now=step.now, assignment_id=assignment.id)
    await step.end(
        assignment,
        seller,
        status=DECLINED,
        reason=reason,
        event_type="assignment.declined.v1",
        event=AssignmentDeclinedV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            declined_at=step.now,
            reason=reason,
        ),
    )
    await step.assignments.flush()
    await route(step, await step.lead(assignment.lead_id))
    return assignment


async def contacted(step: Step, assignment: Assignment, channel: ContactChannel) -> Assignment:
    require_transition("contacted", assignment.status)
    first = assignment.contacted_at is None
    assignment.status = CONTACTED
    assignment.contacted_at = assignment.contacted_at or step.now
    assignment.contact_channel = channel
    if first:
        await step.timers.cancel(now=step.now, assignment_id=assignment.id, kinds=(FIRST_CONTACT,))
        await schedule_followup(step, assignment)
    await step.announce(
        assignment.lead_id,
        "lead.contacted.v1",
        LeadContactedV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            channel=channel,
            contacted_at=step.now,
        ),
    )
    return assignment


async def appointment(
    step: Step, assignment: Assignment, at: datetime, site_id: str | None
) -> Assignment:
    require_transition("appointment", assignment.status)
    if at <= step.now:
        raise InvalidRequest(
            "Invalid field: appointment_at",
            errors=[
                {
                    "field": "appointment_at",
                    "location": "body",
                    "type": "value_error",
                    "message": "the appointment must be in the future",
                }
            ],
        )
    if site_id is not None and await step.directory.site(site_id) is None:
        raise UnknownSite("No site has the site_id.")
    assignment.status = APPOINTMENT
    assignment.appointment_at = at
    await step.timers.cancel(
        now=step.now, assignment_id=assignment.id, kinds=(FIRST_CONTACT, FOLLOWUP)
    )
    await step.announce(
        assignment.lead_id,
        "lead.appointment-set.v1",
        LeadAppointmentSetV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            appointment_at=at,
            site_id=site_id or assignment.site_id,
            set_at=step.now,
        ),
    )
    return assignment


async def sold(step: Step, assignment: Assignment) -> Assignment:
    require_transition("sold", assignment.status)
    seller = await step.seller(assignment.seller_id)
    lead = await step.lead(assignment.lead_id)
    lead.status = LEAD_WON
    lead.close_reason = "sold"
    lead.updated_at = step.now
    await step.timers.cancel(now=step.now, lead_id=lead.lead_id)
    await step.end(
        assignment,
        seller,
        status=SOLD,
        reason="sold",
        event_type="lead.won.v1",
        event=LeadWonV1(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            vehicle_ad_ref=lead.vehicle_ad_ref,
            won_at=step.now,
        ),
    )
    if lead.vehicle_ad_ref:
        await vehicle_sold(step, lead.vehicle_ad_ref, except_lead=lead.lead_id)
    return assignment


async def lost(step: Step, assignment: Assignment, reason: LostReason) -> Assignment:
    require_transition("lost", assignment.status)
    seller = await step.seller(assignment.seller_id)
    lead = await step.lead(assignment.lead_id)
    lead.status = LEAD_LOST
    lead.close_reason = reason
    lead.updated_at = step.now
    await step.timers.cancel(now=step.now, lead_id=lead.lead_id)
    await step.end(
        assignment,
        seller,
        status=LOST,
        reason=reason,
        event_type="lead.lost.v1",
        event=LeadLostV1(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            reason=reason,
            lost_at=step.now,
        ),
    )
    return assignment
