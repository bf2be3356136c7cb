"""The states of a lead in dispatch and of its assignments, and which call-back may move an
assignment from which status.

Lead::

    unassigned ──offer──▶ offered ──accept──▶ assigned ──sold──▶ won
        ▲  (escalated)       │                    └──lost──▶ lost
        └──decline/expiry────┘   (no seller left this round)
    any open status ──vehicle sold / do-not-contact──▶ lost

Assignment::

    offered ──accept──▶ accepted ──contacted──▶ contacted ──appointment──▶ appointment
       │                    └──────────sold / lost (from any of the three)──────────┘
       └──decline / expiry / withdrawal──▶ declined | expired | withdrawn

An assignment is *open* (``is_open``, it counts in the seller's load) from its offer until it
ends; a lead is open while it is unassigned, offered or assigned.
"""

from __future__ import annotations

from typing import Literal

from dispatch.problems import IllegalTransition

LeadStatus = Literal["unassigned", "offered", "assigned", "won", "lost"]
LEAD_UNASSIGNED: LeadStatus = "unassigned"
LEAD_OFFERED: LeadStatus = "offered"
LEAD_ASSIGNED: LeadStatus = "assigned"
LEAD_WON: LeadStatus = "won"
LEAD_LOST: LeadStatus = "lost"
OPEN_LEAD_STATUSES: tuple[LeadStatus, ...] = (LEAD_UNASSIGNED, LEAD_OFFERED, LEAD_ASSIGNED)
# A lead routing may (re)offer: nobody holds it yet.
ROUTABLE_LEAD_STATUSES: tuple[LeadStatus, ...] = (LEAD_UNASSIGNED, LEAD_OFFERED)

AssignmentStatus = Literal[
    "offered",
    "accepted",
    "contacted",
    "appointment",
    "sold",
    "lost",
    "declined",
    "expired",
    "withdrawn",
]
OFFERED: AssignmentStatus = "offered"
ACCEPTED: AssignmentStatus = "accepted"
CONTACTED: AssignmentStatus = "contacted"
APPOINTMENT: AssignmentStatus = "appointment"
SOLD: AssignmentStatus = "sold"
LOST: AssignmentStatus = "lost"
DECLINED: AssignmentStatus = "declined"
EXPIRED: AssignmentStatus = "expired"
WITHDRAWN: AssignmentStatus = "withdrawn"
# The seller works on the lead: it may be won or lost from here.
WORKING: tuple[AssignmentStatus, ...] = (ACCEPTED, CONTACTED, APPOINTMENT)

# The sellers' call-backs, and the statuses each may move an assignment from.
CallbackAction = Literal["accept", "decline", "contacted", "appointment", "sold", "lost"]
TRANSITIONS: dict[CallbackAction, tuple[AssignmentStatus, ...]] = {
    "accept": (OFFERED,),
    "decline": (OFFERED,),
    "contacted": (ACCEPTED, CONTACTED),
    "appointment": (ACCEPTED, CONTACTED, APPOINTMENT),
    "sold": WORKING,
    "lost": WORKING,
}


def require_transition(action: CallbackAction, status: AssignmentStatus) -> None:
    """409 unless ``action`` may move an assignment from ``status``."""
    allowed = TRANSITIONS[action]
    if status not in allowed:
        raise IllegalTransition(
            f"Cannot {action} an assignment in status {status}.",
            status_now=status,
            allowed_from=list(allowed),
        )


def is_open_lead(status: LeadStatus) -> bool:
    return status in OPEN_LEAD_STATUSES


def is_routable(status: LeadStatus) -> bool:
    return status in ROUTABLE_LEAD_STATUSES
