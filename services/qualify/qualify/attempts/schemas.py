"""Bodies of the attempts API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qualify.leads.state import LeadStatus
from shared.events.payloads import AttemptOutcome, ContactChannel
from shared.instants import Instant


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConsumerRequestIn(Strict):
    """Proof of the consumer's express request to be called in a slot outside the legal hours."""

    slot_start: Instant
    slot_end: Instant
    requested_at: Instant = Field(description="When the consumer asked.")
    channel: Literal["phone_call", "web_form", "email", "sms", "in_person"]
    wording: str = Field(min_length=3, max_length=1000, description="What the consumer said.")

    @model_validator(mode="after")
    def slot_in_order(self) -> ConsumerRequestIn:
        if self.slot_end <= self.slot_start:
            raise ValueError("slot_end must be after slot_start")
        if self.requested_at > self.slot_start:
            raise ValueError("requested_at must precede the slot")
        return self


class AttemptIn(Strict):
    channel: ContactChannel
    outcome: AttemptOutcome
    note: str | None = Field(default=None, max_length=4000)
    attempted_at: Instant | None = Field(default=None, description="Defaults to now.")
    consumer_request: ConsumerRequestIn | None = Field(
        default=None, description="Only for a call outside the legal hours the consumer asked for."
    )


class AttemptOut(BaseModel):
    id: str
    lead_id: str
    operator_id: str
    channel: ContactChannel
    outcome: AttemptOutcome
    note: str | None
    attempted_at: datetime
    recorded_at: datetime
    exemption: str | None


class AttemptRecorded(BaseModel):
    attempt: AttemptOut
    lead_status: LeadStatus = Field(description="The lead's status after the attempt.")
    auto_disqualified: bool = Field(
        description="True when this attempt reached the unanswered limit (lead unreachable)."
    )
