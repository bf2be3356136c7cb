"""The answer to every accepted input (202)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LeadRef(BaseModel):
    id: str
    status: Literal["accepted", "duplicate"]


class IntakeOut(BaseModel):
    status: Literal["accepted", "duplicate", "ignored", "quarantined", "pending"] = Field(
        description="accepted/duplicate: `id` is the lead id; ignored: `id` is the ignored "
        "record; quarantined: `id` is the quarantine id; pending: stored, fetched later."
    )
    id: str | None = None
    reason: str | None = None
    raw_input_id: str
    leads: list[LeadRef] = Field(default_factory=list)
    quarantine_ids: list[str] = Field(default_factory=list)
    pending_fetches: int = 0
