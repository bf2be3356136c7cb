"""The states of a lead in dispatch and of its assignments, and which call-back may move an
assignment from which status.

Lead::

    unassigned ──offer──▶ offered ──accept──▶ assigned ──sold──▶ won
        ▲  (escalated)       │                 │  └──lost──▶ lost
        └──decline/expiry────┘                 │
        └──────hand back (routed again)────────┘   (no seller left this round)
    any open status ──manager assigns or reassigns──▶ offered | assigned (or routed again)
    any open status ──vehicle sold / do-not-contact──▶ lost

Assignment::

    offered ──accept──▶ accepted ──contacted──▶ contacted ──appointment──▶ appointment
       │                    │                      ▲                        │  ▲   │
       │                    │                      └────────no-show─────────┘  └───┘ reschedule
       │                    └──────────sold / lost / hand back (from any of the three)──────┘
       └──decline / expiry──▶ declined | expired
    any open status ──withdrawal (vehicle sold, do-not-contact, a manager's reassignment)──▶
    withdrawn

An assignment is *open* (``is_open``, it counts in the seller's load) from its offer until it
ends; a lead is open while it is unassigned, offered or assigned. A manager's direct assignment
starts at ``accepted`` (or at the progress the lead had: contacted, appointment).
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
    "handed_back",
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
HANDED_BACK: AssignmentStatus = "handed_back"
# The seller works on the lead: it may be won, lost or handed back from here.
WORKING: tuple[AssignmentStatus, ...] = (ACCEPTED, CONTACTED, APPOINTMENT)
OPEN_STATUSES: tuple[AssignmentStatus, ...] = (OFFERED, *WORKING)

# The sellers' call-backs (the last segment of their URL), and the statuses each may move an
# assignment from.
CallbackAction = Literal[
    "accept",
    "decline",
    "contacted",
    "appointment",
    "reschedule",
    "no-show",
    "sold",
    "lost",
    "hand-back",
]
TRANSITIONS: dict[CallbackAction, tuple[AssignmentStatus, ...]] = {
    "accept": (OFFERED,),
    "decline": (OFFERED,),
    "contacted": (ACCEPTED, CONTACTED),
    "appointment": (ACCEPTED, CONTACTED, APPOINTMENT),
    "reschedule": (APPOINTMENT,),
    "no-show": (APPOINTMENT,),
    "sold": WORKING,
    "lost": WORKING,
    "hand-back": WORKING,
}

# The end reason of an assignment a manager took away. Like a hand-back, it keeps the seller out
# of the lead's current round of routing (besides being offered it in that round).
REASSIGNED_REASON = "reassigned"


# An appointment's history: the current one, one moved to a later time, one the prospect missed.
AppointmentStatus = Literal["scheduled", "rescheduled", "missed"]
SCHEDULED: AppointmentStatus = "scheduled"
RESCHEDULED: AppointmentStatus = "rescheduled"
MISSED: AppointmentStatus = "missed"


def working_status(contacted: bool, appointment: bool) -> AssignmentStatus:
    """The status of a held lead from its progress (a direct or resumed assignment)."""
    if appointment:
        return APPOINTMENT
    return CONTACTED if contacted else ACCEPTED


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
