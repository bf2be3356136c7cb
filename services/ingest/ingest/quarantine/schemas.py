"""Bodies of the quarantine API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

QuarantineStatus = Literal["open", "resolved", "ignored"]
RetryStatus = Literal["resolved", "ignored", "open", "requeued"]


class QuarantinedOut(BaseModel):
    id: str
    raw_input_id: str
    channel: str
    reason: str
    detail: str | None
    status: QuarantineStatus
    attempts: int
    lead_id: str | None
    created_at: datetime
    updated_at: datetime


class QuarantinePage(BaseModel):
    items: list[QuarantinedOut]
    next_cursor: str | None


class IgnoredOut(BaseModel):
    id: str
    raw_input_id: str
    channel: str
    reason: str
    created_at: datetime


class IgnoredPage(BaseModel):
    items: list[IgnoredOut]
    next_cursor: str | None


class RetryOut(BaseModel):
    quarantine_id: str
    status: RetryStatus
    reason: str | None = None
    lead_ids: list[str] = []
