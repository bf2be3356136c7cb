"""The answer to every accepted input (202)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LeadRef(BaseModel):
    id: str
    status: Literal["accepted", "duplicate"]


IntakeStatus = Literal[
    "accepted", "duplicate", "ignored", "quarantined", "pending", "reply", "bounce"
]


class IntakeOut(BaseModel):
    status: IntakeStatus = Field(
        description="accepted/duplicate: `id` is the lead id; ignored: `id` is the ignored "
        "record; quarantined: `id` is the quarantine id; pending: stored, fetched later; "
        "reply/bounce (e-mail): a message of the conversation of the lead `lead_id` (a reply "
        "of the prospect, a bounce of one of our e-mails), never a new lead: `id` is its "
        "message id, the same when the message is delivered again."
    )
    id: str | None = None
    lead_id: str | None = Field(
        default=None,
        description="reply/bounce, and an ignored message tied to a lead (an auto-reply): "
        "the lead whose conversation it belongs to.",
    )
    reason: str | None = None
    raw_input_id: str
    leads: list[LeadRef] = Field(default_factory=list)
    quarantine_ids: list[str] = Field(default_factory=list)
    pending_fetches: int = 0
