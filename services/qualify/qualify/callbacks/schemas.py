"""Bodies of the call-backs API."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qualify.leads.state import LeadStatus
from qualify.models import QueuedLead
from shared.events.payloads import LeadSource
from shared.instants import within_bounds


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    at: datetime = Field(
        description="When the prospect asked to be called: with an offset "
        "(2026-12-03T17:30:00+01:00), or a local time (2026-12-03T17:30:00) read in the "
        "prospect's time zone (an overseas number's own, else CALLING_TIMEZONE).",
        examples=["2026-12-03T17:30:00"],
    )
    note: str | None = Field(
        default=None, max_length=1000, description="What the prospect said (kept in qualify)."
    )

    @field_validator("at")
    @classmethod
    def sane_year(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            if not 2000 <= value.year < 2100:
                raise ValueError("must be between 2000 and 2100")
        elif not within_bounds(value):
            raise ValueError("must be between 2000 and 2100")
        return value


class CallbackOut(BaseModel):
    lead_id: str
    at: datetime = Field(description="The instant (UTC).")
    local_at: datetime = Field(description="The same instant in the prospect's time zone.")
    timezone: str
    operator_id: str = Field(description="Who set it: the lead is theirs until its time.")
    set_at: datetime
    note: str | None

    @classmethod
    def of(cls, lead: QueuedLead) -> CallbackOut:
        assert lead.callback_at is not None
        assert lead.callback_by is not None
        assert lead.callback_set_at is not None
        zone = lead.callback_timezone or "UTC"
        return cls(
            lead_id=lead.lead_id,
            at=lead.callback_at,
            local_at=lead.callback_at.astimezone(ZoneInfo(zone)),
            timezone=zone,
            operator_id=lead.callback_by,
            set_at=lead.callback_set_at,
            note=lead.callback_note,
        )


class ScheduledCallback(BaseModel):
    """One line of an operator's call-backs: the call-back and what is needed to make it."""

    callback: CallbackOut
    status: LeadStatus
    source: LeadSource
    overdue: bool
    claimed_by_me: bool
    full_name: str | None
    phone: str | None
