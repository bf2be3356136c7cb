"""Bodies and query parameters of the queue API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from qualify.leads.state import LeadStatus, OpenStatus
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


class QueueQuery(BaseModel):
    """The poll's query parameters as the direct route validates them (``shared.direct.
    query_model``): the FastAPI route's, checked at start-up to be the same (name, type,
    constraints, default)."""

    source: LeadSource | None = None
    site: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    status: OpenStatus | None = None
    overdue: bool | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=200)] = None
