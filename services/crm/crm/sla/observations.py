"""What an event tells the SLA facts: milestones reached (with their instants) and the lead's
dimensions (source, site, seller, operator, path). Ids and instants only: no personal data is
kept. A reopening (``lead.reopened.v1``) takes back the disqualification it undoes.

Every payload is read through its pydantic model from ``shared/events/payloads.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm.sla.stages import Milestone
from shared.events import Envelope
from shared.events.payloads import (
    AssignmentAcceptedV1,
    AssignmentOfferedV1,
    LeadAppointmentSetV1,
    LeadAssignedV1,
    LeadContactAttemptedV1,
    LeadContactedV1,
    LeadDisqualifiedV1,
    LeadLostV1,
    LeadQualifiedV1,
    LeadReceivedV1,
    LeadReopenedV1,
    LeadWonV1,
    LeadWonV2,
)


@dataclass
class Observation:
    lead_id: str
    milestones: dict[Milestone, datetime] = field(default_factory=dict)
    source: str | None = None
    site: str | None = None
    seller_id: str | None = None
    operator_id: str | None = None
    path: str | None = None  # "qualify" (operators) or "direct" (qualify's routing policy)
    reopened_at: datetime | None = None  # undoes a disqualification made before it
    channel: str | None = None  # in_store or full_web: the site's calendar or the pool's
    sale_price_eur: int | None = None


def _received(data: dict[str, Any]) -> Observation:
    event = LeadReceivedV1.model_validate(data)
    return Observation(event.lead_id, {"received": event.received_at}, source=event.source)


def _attempted(data: dict[str, Any]) -> Observation:
    event = LeadContactAttemptedV1.model_validate(data)
    milestones: dict[Milestone, datetime] = {"first_attempt": event.attempted_at}
    if event.outcome == "reached":
        milestones["reached"] = event.attempted_at
    return Observation(event.lead_id, milestones, operator_id=event.operator_id, path="qualify")


def _qualified(data: dict[str, Any]) -> Observation:
    event = LeadQualifiedV1.model_validate(data)
    return Observation(
        event.lead_id,
        {"qualified": event.qualified_at, "received": event.received_at},
        source=event.source,
        site=event.site,
        # A direct lead's qualifier is a machine, not an operator to measure.
        operator_id=event.operator_id if event.path == "qualify" else None,
        path=event.path,
        channel=event.channel,
    )


def _disqualified(data: dict[str, Any]) -> Observation:
    event = LeadDisqualifiedV1.model_validate(data)
    return Observation(
        event.lead_id,
        {"disqualified": event.disqualified_at},
        operator_id=event.operator_id,
        path="qualify",
    )


def _reopened(data: dict[str, Any]) -> Observation:
    event = LeadReopenedV1.model_validate(data)
    return Observation(event.lead_id, path="qualify", reopened_at=event.reopened_at)


def _offered(data: dict[str, Any]) -> Observation:
    event = AssignmentOfferedV1.model_validate(data)
    return Observation(
        event.lead_id, {"offered": event.offered_at}, site=event.site_id, seller_id=event.seller_id
    )


def _accepted(data: dict[str, Any]) -> Observation:
    event = AssignmentAcceptedV1.model_validate(data)
    return Observation(event.lead_id, {"accepted": event.accepted_at}, seller_id=event.seller_id)


def _assigned(data: dict[str, Any]) -> Observation:
    # The owner is the seller who accepted: assigned_at is the acceptance.
    event = LeadAssignedV1.model_validate(data)
    return Observation(
        event.lead_id,
        {"accepted": event.assigned_at},
        site=event.site_id,
        seller_id=event.seller_id,
    )


def _contacted(data: dict[str, Any]) -> Observation:
    event = LeadContactedV1.model_validate(data)
    return Observation(
        event.lead_id, {"seller_contact": event.contacted_at}, seller_id=event.seller_id
    )


def _appointment(data: dict[str, Any]) -> Observation:
    # When the appointment was made (set_at), not when it takes place (appointment_at).
    event = LeadAppointmentSetV1.model_validate(data)
    return Observation(
        event.lead_id, {"appointment": event.set_at}, site=event.site_id, seller_id=event.seller_id
    )


def _won(data: dict[str, Any]) -> Observation:
    event = LeadWonV1.model_validate(data)
    return Observation(event.lead_id, {"won": event.won_at}, seller_id=event.seller_id)


def _won_v2(data: dict[str, Any]) -> Observation:
    # v1 and v2 of one sale may both arrive (dispatch publishes v1 beside v2 for a while): the
    # earliest won_at stays, the price comes from v2.
    event = LeadWonV2.model_validate(data)
    return Observation(
        event.lead_id,
        {"won": event.won_at},
        site=event.site_id,
        seller_id=event.seller_id,
        sale_price_eur=event.sale_price_eur,
    )


def _lost(data: dict[str, Any]) -> Observation:
    event = LeadLostV1.model_validate(data)
    return Observation(event.lead_id, {"lost": event.lost_at}, seller_id=event.seller_id)


READERS: dict[str, Callable[[dict[str, Any]], Observation]] = {
    "lead.received.v1": _received,
    "lead.contact-attempted.v1": _attempted,
    "lead.qualified.v1": _qualified,
    "lead.disqualified.v1": _disqualified,
    "lead.reopened.v1": _reopened,
    "assignment.offered.v1": _offered,
    "assignment.accepted.v1": _accepted,
    "lead.assigned.v1": _assigned,
    "lead.contacted.v1": _contacted,
    "lead.appointment-set.v1": _appointment,
    "lead.won.v1": _won,
    "lead.won.v2": _won_v2,
    "lead.lost.v1": _lost,
}
"""Event types that move a lead's SLA (declines, expiries, escalations and follow-ups do not)."""


def handled_types(catalogue_types: list[str]) -> list[str]:
    """The catalogue's types the SLA consumer handles."""
    return sorted(event_type for event_type in catalogue_types if event_type in READERS)


def observe(envelope: Envelope) -> Observation | None:
    reader = READERS.get(envelope.type)
    return reader(envelope.data) if reader is not None else None
