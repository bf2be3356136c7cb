"""Bodies of the lead read API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from qualify.attempts.schemas import AttemptOut
from qualify.callbacks.schemas import CallbackOut
from qualify.leads.state import LeadStatus
from qualify.qualification.schemas import QualificationOut
from shared.events.payloads import (
    DisqualificationReason,
    LeadKind,
    LeadSource,
    ReopenReason,
    RoutingPath,
)


class ContactOut(BaseModel):
    full_name: str | None
    phone: str | None
    email: str | None
    relay_email: str | None = Field(
        default=None, description="A marketplace's relay address: messages go there."
    )


class ClaimState(BaseModel):
    operator_id: str
    claimed_at: datetime
    expires_at: datetime


class DisqualificationState(BaseModel):
    reason: DisqualificationReason
    duplicate_of: str | None
    note: str | None


class ReopeningState(BaseModel):
    reopened_at: datetime
    operator_id: str
    reason: ReopenReason


class LeadOut(BaseModel):
    lead_id: str
    status: LeadStatus
    kind: LeadKind
    source: LeadSource
    path: RoutingPath = Field(description="qualify (operators) or direct (routing policy).")
    site: str | None
    received_at: datetime
    due_at: datetime = Field(description="When the next contact is due.")
    overdue: bool
    available_at: datetime | None = Field(
        description="Out of the queue until then (a call-back, the wait before a retry)."
    )
    callback: CallbackOut | None
    contact: ContactOut
    unread_replies: int = Field(
        default=0, description="Replies of the prospect not marked read (conversation)."
    )
    ad_ref: str | None
    message: str | None
    claim: ClaimState | None
    attempts: list[AttemptOut]
    first_attempt_at: datetime | None
    unanswered_attempts: int
    handled_by: str | None
    closed_at: datetime | None
    qualification: QualificationOut | None
    disqualification: DisqualificationState | None
    reopening: ReopeningState | None = Field(description="The last reopening, if any.")
