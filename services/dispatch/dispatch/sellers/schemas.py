"""Bodies of the sellers' own views: their open assignments and the feed of their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from dispatch.assignments.schemas import AssignmentOut
from dispatch.webhooks.schemas import DeliveryStatus


class Deadlines(BaseModel):
    """What the seller must do by when (only those that apply to the status)."""

    accept_by: datetime | None = Field(default=None, description="Offered: accept before.")
    first_contact_by: datetime | None = Field(
        default=None, description="Accepted, not contacted yet: first contact before."
    )
    next_followup_at: datetime | None = Field(
        default=None, description="Contacted: the next follow-up of the contact schedule."
    )
    appointment_at: datetime | None = None


class OwnAssignment(AssignmentOut):
    """One of the seller's open offers or assignments, with the lead as their tool received it
    (the qualification: the prospect's contact is personal data, for this seller only)."""

    deadlines: Deadlines
    lead: dict[str, Any]
    callbacks: dict[str, str]


class FeedEvent(BaseModel):
    """One message dispatch wrote for the seller's tool, as its webhook carries it."""

    cursor: str = Field(description="Pass as `after` to read what came after this message.")
    id: str = Field(description="The message's `webhook-id` (the same in the webhook).")
    type: str = Field(description="assignment.offered, assignment.withdrawn, lead.updated…")
    timestamp: datetime = Field(description="When the message was written.")
    lead_id: str | None
    delivery: DeliveryStatus = Field(description="Whether its webhook was delivered (so far).")
    data: dict[str, Any] = Field(description="The webhook's `data`, byte for byte its meaning.")


class Feed(BaseModel):
    events: list[FeedEvent]
    next_cursor: str | None = Field(
        description="Where to read on from (the last event's cursor, else the one given)."
    )
    has_more: bool = Field(description="More events are ready: read again at once.")
