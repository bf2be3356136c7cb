"""The lead state machine.

    waiting ──attempt──▶ contacting ──qualify──▶ qualified
       │                     │
       └──────qualify / disqualify (or N unanswered attempts)──▶ disqualified

``waiting`` and ``contacting`` are open (in the queue unless claimed); ``qualified`` and
``disqualified`` are closed: every action on them is a 409. A claim (lease) is orthogonal to the
status: claiming, attempting, qualifying and disqualifying need an open lead; the last three also
need the caller to hold an unexpired claim.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from qualify.problems import ClaimRequired, LeadClaimed, LeadClosed

if TYPE_CHECKING:  # models type their status columns with the Literals below
    from qualify.models import QueuedLead

LeadStatus = Literal["waiting", "contacting", "qualified", "disqualified"]
OpenStatus = Literal["waiting", "contacting"]
WAITING: LeadStatus = "waiting"
CONTACTING: LeadStatus = "contacting"
QUALIFIED: LeadStatus = "qualified"
DISQUALIFIED: LeadStatus = "disqualified"
OPEN_STATUSES: frozenset[str] = frozenset({WAITING, CONTACTING})


def has_active_claim(lead: QueuedLead, now: datetime) -> bool:
    return (
        lead.claimed_by is not None
        and lead.claim_expires_at is not None
        and lead.claim_expires_at > now
    )


def is_held_by(lead: QueuedLead, operator_id: str, now: datetime) -> bool:
    return has_active_claim(lead, now) and lead.claimed_by == operator_id


def require_open(lead: QueuedLead) -> None:
    if not lead.is_open:
        raise LeadClosed(f"The lead is {lead.status}; no further action is possible.")


def require_claimable(lead: QueuedLead, operator_id: str, now: datetime) -> None:
    require_open(lead)
    if has_active_claim(lead, now) and lead.claimed_by != operator_id:
        raise LeadClaimed(
            "Another operator holds this lead.",
            claim_expires_at=_iso(lead.claim_expires_at),
        )


def require_holder(lead: QueuedLead, operator_id: str, now: datetime) -> None:
    """The lead is open and ``operator_id`` holds an unexpired claim on it."""
    require_open(lead)
    if is_held_by(lead, operator_id, now):
        return
    if has_active_claim(lead, now):
        raise LeadClaimed(
            "Another operator holds this lead.",
            claim_expires_at=_iso(lead.claim_expires_at),
        )
    raise ClaimRequired("Claim the lead first (no claim, or the claim expired).")


def clear_claim(lead: QueuedLead) -> None:
    lead.claimed_by = None
    lead.claimed_by_name = None
    lead.claimed_at = None
    lead.claim_expires_at = None


def close(lead: QueuedLead, status: LeadStatus, *, by: str, at: datetime) -> None:
    if status not in (QUALIFIED, DISQUALIFIED):
        raise ValueError("close to qualified or disqualified only")
    lead.status = status
    lead.is_open = False
    lead.handled_by = by
    lead.closed_at = at
    clear_claim(lead)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
