"""The sellers' call-backs on their assignments: accept, decline, contacted, appointment,
reschedule, no-show, sold, lost, hand back. Each checks the transition (``state.TRANSITIONS``;
409 otherwise), moves the assignment and the lead, keeps the contact schedule's timers and
publishes its event."""

from __future__ import annotations

import uuid
from datetime import datetime

from dispatch.assignments.closing import vehicle_sold
from dispatch.assignments.deadlines import schedule_followup, start_work
from dispatch.assignments.offers import route
from dispatch.assignments.state import (
    APPOINTMENT,
    CONTACTED,
    DECLINED,
    HANDED_BACK,
    LEAD_LOST,
    LEAD_WON,
    LOST,
    MISSED,
    RESCHEDULED,
    SCHEDULED,
    SOLD,
    TRANSITIONS,
    require_transition,
)
from dispatch.assignments.step import Step
from dispatch.models import Appointment, Assignment, DispatchLead
from dispatch.people.sellers import seller_of_caller
from dispatch.problems import (
    IllegalTransition,
    NotYourAssignment,
    UnknownAssignment,
    UnknownSite,
)
from dispatch.routing.engine import target_for
from dispatch.timers.kinds import FIRST_CONTACT, FOLLOWUP
from shared.auth import Principal
from shared.errors import InvalidRequest
from shared.events.payloads import (
    AssignmentAcceptedV1,
    AssignmentDeclinedV1,
    AssignmentHandedBackV1,
    ContactChannel,
    DeclineReason,
    HandBackReason,
    LeadAppointmentMissedV1,
    LeadAppointmentRescheduledV1,
    LeadAppointmentSetV1,
    LeadAssignedV1,
    LeadContactedV1,
    LeadLostV1,
    LeadWonV1,
    LeadWonV2,
    LostReason,
)


async def own_assignment(step: Step, assignment_id: str, caller: Principal) -> Assignment:
    """The assignment, locked, if the caller's seller holds it; an admin may act on any."""
    seller = await seller_of_caller(step.session, caller)
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
    target = await target_for(step.session, lead, step.settings, now)
    await start_work(step, assignment, lead, target.calendar)
    await announce_held(step, assignment, lead)
    return assignment


async def announce_held(step: Step, assignment: Assignment, lead: DispatchLead) -> None:
    """``assignment.accepted.v1`` and ``lead.assigned.v1``: the seller holds the lead."""
    now = step.now
    await step.announce(
        lead.lead_id,
        "assignment.accepted.v1",
        AssignmentAcceptedV1(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            accepted_at=now,
            # Carried progress (contacted already): no first contact is due, the time is now.
            first_contact_due_at=assignment.first_contact_due_at or now,
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


def _future(at: datetime, now: datetime) -> None:
    if at <= now:
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


async def _check_site(step: Step, site_id: str | None) -> None:
    if site_id is not None and await step.directory.site(site_id) is None:
        raise UnknownSite("No site has the site_id.")


async def _book(step: Step, assignment: Assignment, at: datetime, site_id: str | None) -> None:
    """Record the appointment in the lead's history; the one it replaces (if any) is kept as
    ``rescheduled``. Follow-ups stop: the appointment is the next step."""
    previous = await step.assignments.current_appointment(assignment.lead_id)
    if previous is not None:
        previous.status = RESCHEDULED
        previous.ended_at = step.now
    step.assignments.add_appointment(
        Appointment(
            id=str(uuid.uuid4()),
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            site_id=site_id,
            appointment_at=at,
            status=SCHEDULED,
            set_at=step.now,
            ended_at=None,
        )
    )
    assignment.status = APPOINTMENT
    assignment.appointment_at = at
    await step.timers.cancel(
        now=step.now, assignment_id=assignment.id, kinds=(FIRST_CONTACT, FOLLOWUP)
    )


async def appointment(
    step: Step, assignment: Assignment, at: datetime, site_id: str | None
) -> Assignment:
    require_transition("appointment", assignment.status)
    _future(at, step.now)
    await _check_site(step, site_id)
    site_id = site_id or assignment.site_id
    await _book(step, assignment, at, site_id)
    await step.announce(
        assignment.lead_id,
        "lead.appointment-set.v1",
        LeadAppointmentSetV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            appointment_at=at,
            site_id=site_id,
            set_at=step.now,
        ),
    )
    return assignment


async def reschedule(
    step: Step, assignment: Assignment, at: datetime, site_id: str | None
) -> Assignment:
    """The appointment moves to a new time (and site); the previous one stays in the history."""
    require_transition("reschedule", assignment.status)
    _future(at, step.now)
    await _check_site(step, site_id)
    before = assignment.appointment_at
    assert before is not None
    if site_id is None:
        current = await step.assignments.current_appointment(assignment.lead_id)
        site_id = current.site_id if current is not None else assignment.site_id
    await _book(step, assignment, at, site_id)
    await step.announce(
        assignment.lead_id,
        "lead.appointment-rescheduled.v1",
        LeadAppointmentRescheduledV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            appointment_at=at,
            previous_appointment_at=before,
            site_id=site_id,
            rescheduled_at=step.now,
        ),
    )
    return assignment


async def no_show(step: Step, assignment: Assignment) -> Assignment:
    """The prospect did not come: the appointment is kept as ``missed`` and the lead goes back
    to its seller's follow-ups (a new J+n series from now)."""
    require_transition("no-show", assignment.status)
    at = assignment.appointment_at
    assert at is not None
    if step.now < at:
        raise IllegalTransition(
            "The appointment has not taken place yet.",
            status_now=assignment.status,
            allowed_from=list(TRANSITIONS["no-show"]),
        )
    current = await step.assignments.current_appointment(assignment.lead_id)
    if current is not None:
        current.status = MISSED
        current.ended_at = step.now
    site_id = current.site_id if current is not None else assignment.site_id
    assignment.status = CONTACTED
    assignment.appointment_at = None
    assignment.contacted_at = assignment.contacted_at or step.now
    assignment.followups_from_at = step.now
    assignment.followups_sent = 0
    await schedule_followup(step, assignment)
    await step.announce(
        assignment.lead_id,
        "lead.appointment-missed.v1",
        LeadAppointmentMissedV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            appointment_at=at,
            site_id=site_id,
            reported_at=step.now,
        ),
    )
    return assignment


async def hand_back(step: Step, assignment: Assignment, reason: HandBackReason) -> Assignment:
    """The seller gives the lead back (not a loss): it is routed again with its progress, never
    to this seller in the same round."""
    require_transition("hand-back", assignment.status)
    seller = await step.seller(assignment.seller_id)
    lead = await step.lead(assignment.lead_id)
    await step.timers.cancel(now=step.now, assignment_id=assignment.id)
    await step.end(
        assignment,
        seller,
        status=HANDED_BACK,
        reason=reason,
        event_type="assignment.handed-back.v1",
        event=AssignmentHandedBackV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            reason=reason,
            handed_back_at=step.now,
        ),
    )
    await step.assignments.flush()
    await route(step, lead, reopen=True)
    return assignment


async def sold(step: Step, assignment: Assignment, price_eur: int | None = None) -> Assignment:
    require_transition("sold", assignment.status)
    seller = await step.seller(assignment.seller_id)
    lead = await step.lead(assignment.lead_id)
    lead.status = LEAD_WON
    lead.close_reason = "sold"
    lead.updated_at = step.now
    assignment.sale_price_eur = price_eur
    await step.timers.cancel(now=step.now, lead_id=lead.lead_id)
    if step.settings.publish_lead_won_v1:
        # Until every consumer reads v2 (docs/events.md): the same fact, without the price.
        await step.announce(
            lead.lead_id,
            "lead.won.v1",
            LeadWonV1(
                lead_id=lead.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                vehicle_ad_ref=lead.vehicle_ad_ref,
                won_at=step.now,
            ),
        )
    await step.end(
        assignment,
        seller,
        status=SOLD,
        reason="sold",
        event_type="lead.won.v2",
        event=LeadWonV2(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=assignment.seller_id,
            site_id=assignment.site_id,
            vehicle_ad_ref=lead.vehicle_ad_ref,
            sale_price_eur=price_eur,
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
