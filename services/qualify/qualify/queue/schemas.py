"""Bodies of the queue API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from qualify.leads.state import LeadStatus
from shared.events.payloads import LeadKind, LeadSource


class QueueItem(BaseModel):
    lead_id: str
    status: LeadStatus
    kind: LeadKind
    source: LeadSource
    site: str | None
    received_at: datetime
    due_at: datetime
    overdue: bool
    callback_at: datetime | None = Field(
        description="The call-back the prospect asked for (served first from its time)."
    )
    attempt_count: int
    unread_replies: int = Field(
        default=0, description="Replies of the prospect not marked read (conversation)."
    )
    full_name: str | None
    phone: str | None
    email: str | None
    ad_ref: str | None


class QueuePage(BaseModel):
    items: list[QueueItem]
    next_cursor: str | None
