"""The lead state machine.

    waiting ──attempt──▶ contacting ──qualify──▶ qualified
       │  ▲                  │  ▲
       │  └───── reopen ─────┼──┴── disqualified
       └──────qualify / disqualify (or N unanswered attempts)──▶ disqualified

``waiting`` and ``contacting`` are open (in the queue unless claimed, or waiting for their
call-back or next try); ``qualified`` and ``disqualified`` are closed: every action on them is a
409, except reopening a disqualified lead (back to ``waiting``, or ``contacting`` when it had
attempts). A qualified lead belongs to dispatch: it is never reopened. A claim (lease) is
orthogonal to the status: claiming, attempting, qualifying and disqualifying need an open lead;
the last three also need the caller to hold an unexpired claim. A call-back scheduled by an
operator is theirs until its time: before it, nobody else may claim the lead.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from qualify.problems import CallbackScheduled, ClaimRequired, LeadClaimed, LeadClosed
from shared.events.payloads import ReopenReason

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


def has_pending_callback(lead: QueuedLead, now: datetime) -> bool:
    return lead.callback_at is not None and lead.callback_at > now


def reserved_for_another(lead: QueuedLead, operator_id: str, now: datetime) -> bool:
    """Another operator's call-back is scheduled on the lead and its time has not come."""
    return has_pending_callback(lead, now) and lead.callback_by != operator_id


def require_claimable(lead: QueuedLead, operator_id: str, now: datetime) -> None:
    require_open(lead)
    if has_active_claim(lead, now) and lead.claimed_by != operator_id:
        raise LeadClaimed(
            "Another operator holds this lead.",
            claim_expires_at=_iso(lead.claim_expires_at),
        )
    if reserved_for_another(lead, operator_id, now):
        raise CallbackScheduled(
            "Another operator's call-back is scheduled on this lead; anyone may take it from "
            "its time.",
            callback_at=_iso(lead.callback_at),
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


def clear_callback(lead: QueuedLead) -> None:
    lead.callback_at = None
    lead.callback_timezone = None
    lead.callback_by = None
    lead.callback_set_at = None
    lead.callback_note = None


def close(lead: QueuedLead, status: LeadStatus, *, by: str, at: datetime) -> None:
    if status not in (QUALIFIED, DISQUALIFIED):
        raise ValueError("close to qualified or disqualified only")
    lead.status = status
    lead.is_open = False
    lead.handled_by = by
    lead.closed_at = at
    clear_claim(lead)
    clear_callback(lead)


def reopen(lead: QueuedLead, *, by: str, at: datetime, reason: ReopenReason) -> None:
    """A disqualified lead is open again: its disqualification is forgotten (the event keeps
    it), its unanswered count starts again (else one more no-answer would close it at once)."""
    if lead.status != DISQUALIFIED:
        raise ValueError("only a disqualified lead is reopened")
    lead.status = CONTACTING if lead.attempt_count else WAITING
    lead.is_open = True
    lead.handled_by = None
    lead.closed_at = None
    lead.disqualification_reason = None
    lead.duplicate_of = None
    lead.disqualification_note = None
    lead.unanswered_count = 0
    lead.reopened_at = at
    lead.reopened_by = by
    lead.reopen_reason = reason


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
