"""Every later step of a lead becomes a timeline entry of its client: attempts, messages to and
from the prospect, qualification (with its path: an operator's or direct), disqualification and
reopening, assignment, seller contacts, appointment, outcome. Only ids, times and outcomes are
copied: the timeline must not become a second store of notes, message texts and contact
details (a message's text stays in qualify's conversation, reached by erasure there)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.repository import ClientRepository
from shared.events import Envelope

# Event types of a lead's life after its receipt (received is handled by on_lead_received).
TIMELINE_EVENT_TYPES: tuple[str, ...] = (
    "lead.contact-attempted.v1",
    "lead.qualified.v1",
    "lead.disqualified.v1",
    "lead.reopened.v1",
    "lead.message-sent.v1",
    "lead.message-received.v1",
    "lead.message-bounced.v1",
    "lead.opted-out.v1",
    "assignment.offered.v1",
    "assignment.accepted.v1",
    "assignment.declined.v1",
    "assignment.expired.v1",
    "assignment.withdrawn.v1",
    "lead.assigned.v1",
    "lead.escalated.v1",
    "lead.contacted.v1",
    "lead.appointment-set.v1",
    "lead.won.v1",
    "lead.won.v2",
    "lead.lost.v1",
    # The real life of an assignment and its appointment (dispatch, issue 14).
    "assignment.reassigned.v1",
    "assignment.handed-back.v1",
    "lead.appointment-rescheduled.v1",
    "lead.appointment-missed.v1",
)

# One sale, two versions: dispatch publishes lead.won.v1 beside v2 (sale price) while consumers
# move to v2; both become one entry (the later one adds what it knows).
_WON = frozenset({"lead.won.v1", "lead.won.v2"})

# Fields worth showing on a timeline that are never personal data.
_DETAIL_KEYS = frozenset(
    {
        "attempt_id",
        "operator_id",
        "channel",
        "outcome",
        "exemption",
        "reason",
        "intent",
        "site_id",
        "seller_id",
        "assignment_id",
        "mode",
        "appointment_at",
        "accept_by",
        "first_contact_due_at",
        "duplicate_of",
        "vehicle_ad_ref",
        "escalated_to",
        "attempt",
        "path",
        "previous_reason",
        "message_id",
        "kind",
        "bounce",
        "via",
        "previous_assignment_id",
        "previous_seller_id",
        "reassigned_by",
        "previous_appointment_at",
        "sale_price_eur",
    }
)

# Steps that are the prospect's own contact (they restart the retention clock): a reply they
# wrote is one; a message we sent is not, nor a no-show or a reschedule (the seller reports it,
# the prospect may not have been heard).
_OWN_CONTACT = frozenset(
    {"lead.appointment-set.v1", "lead.won.v1", "lead.won.v2", "lead.message-received.v1"}
)


def _kind(event_type: str) -> str:
    return event_type.rsplit(".", 1)[0]


async def on_lead_event(session: AsyncSession, envelope: Envelope) -> None:
    if envelope.subject is None:
        return
    repository = ClientRepository.from_session(session)
    details: dict[str, Any] = {
        key: value for key, value in envelope.data.items() if key in _DETAIL_KEYS
    }
    if envelope.type in _WON:
        won = await _won_entry(repository, envelope.subject, envelope.data.get("assignment_id"))
        if won is not None:
            entry_id, known = won
            if entry_id != envelope.id:  # this very event's entry: recorded already
                await repository.set_entry_details(entry_id, {**known, **details})
            return
    reached = envelope.type == "lead.contact-attempted.v1" and details.get("outcome") == "reached"
    # Written with the transaction's other entries when it commits: the client lookup, the
    # "recorded already?" check and the insert in one statement for them all.
    repository.hold_lead_entry(
        {
            "id": envelope.id,
            "lead_id": envelope.subject,
            "kind": _kind(envelope.type),
            "occurred_at": envelope.time,
            "source": None,
            "details": details,
        },
        own_contact=envelope.type in _OWN_CONTACT or reached,
    )


async def _won_entry(
    repository: ClientRepository, lead_id: str, assignment: object
) -> tuple[str, dict[str, Any]] | None:
    """The entry (id, details) of this sale already recorded from its other version, if any."""
    for entry in await repository.entry_details_of_lead(lead_id, kind="lead.won"):
        if entry.details.get("assignment_id") == assignment:
            return entry.id, entry.details
    return None
