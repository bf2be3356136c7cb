"""Bodies of the privacy API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ErasureRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=36)
    reason: Literal["data_subject_request"] = "data_subject_request"


class ServiceProgress(BaseModel):
    completed_at: datetime
    erased: dict[str, int]


class ErasureRequestOut(BaseModel):
    id: str
    client_id: str
    reason: str
    requested_at: datetime
    due_at: datetime
    completed_at: datetime | None
    status: Literal["in_progress", "completed"]
    flagged: bool = Field(description="Open and within 7 days of its legal due date.")
    overdue: bool
    lead_count: int
    services: dict[str, ServiceProgress | None]


class ErasureRequestPage(BaseModel):
    items: list[ErasureRequestOut]


class RetentionRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=True, description="Count only (the default), or erase.")


class RetentionRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    trigger: str
    cutoff: datetime
    clients_matched: int
    erasures_requested: int


class RetentionRunPage(BaseModel):
    items: list[RetentionRunOut]
