"""Bodies of the qualification API, validated field by field (each error names its field)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.events.payloads import (
    ContactChannel,
    DisqualificationReason,
    QualificationIntent,
    ReopenReason,
    SalesChannel,
)
from shared.instants import Instant

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SITE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_CLOCK_SKEW = timedelta(minutes=5)

# Validation context of a machine qualification (direct routing), when made and when read back:
# an in-store lead may leave its site to dispatch (the site holding the vehicle, else the
# full-web pool), since nobody asked the prospect.
MACHINE: dict[str, bool] = {"machine": True}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BudgetIn(Strict):
    min_eur: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    max_eur: StrictInt | None = Field(default=None, ge=0, le=10_000_000)

    @field_validator("max_eur")
    @classmethod
    def max_not_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_eur")
        if value is not None and low is not None and value < low:
            raise ValueError("must not be below min_eur")
        return value

    @model_validator(mode="after")
    def some_amount(self) -> BudgetIn:
        if self.min_eur is None and self.max_eur is None:
            raise ValueError("give min_eur, max_eur or both")
        return self


class TradeInIn(Strict):
    make: str = Field(min_length=1, max_length=60)
    model: str | None = Field(default=None, max_length=100)
    year: StrictInt | None = Field(default=None, ge=1900, le=2100)
    mileage_km: StrictInt | None = Field(default=None, ge=0, le=5_000_000)
    registration: str | None = Field(default=None, max_length=20, pattern=r"^[A-Za-z0-9 -]+$")


class ContactSlotIn(Strict):
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: str = Field(description="HH:MM, local time")
    end: str = Field(description="HH:MM, local time")

    @field_validator("start", "end")
    @classmethod
    def hh_mm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM (00:00 to 23:59)")
        return value

    @field_validator("end")
    @classmethod
    def after_start(cls, value: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be after start")
        return value


class ConsentIn(Strict):
    """A marketing consent for one channel, with its proof."""

    granted: StrictBool
    at: Instant
    wording: str = Field(min_length=10, max_length=2000)
    collected_via: Literal["phone_call", "web_form", "email", "sms", "in_person"]

    @field_validator("at")
    @classmethod
    def not_future(cls, value: datetime) -> datetime:
        if value > datetime.now(UTC) + _CLOCK_SKEW:
            raise ValueError("must not be in the future")
        return value


class QualificationIn(Strict):
    intent: QualificationIntent
    channel: SalesChannel
    site: str | None = Field(
        default=None,
        pattern=_SITE,
        validate_default=True,
        description="Site code; required for in_store.",
    )
    vehicle_ad_ref: str | None = Field(
        default=None, min_length=1, max_length=100, description="Defaults to the lead's ad."
    )
    budget: BudgetIn | None = None
    trade_in: TradeInIn | None = Field(
        default=None, validate_default=True, description="Required for intent trade_in."
    )
    financing_wanted: StrictBool = Field(default=False, validate_default=True)
    preferred_contact_slots: list[ContactSlotIn] = Field(default_factory=list, max_length=14)
    language: str = Field(default="fr", pattern=r"^[a-z]{2}$", description="ISO 639-1 code.")
    consents: dict[ContactChannel, ConsentIn] = Field(default_factory=dict)
    notes: str | None = Field(default=None, max_length=4000)

    @field_validator("site")
    @classmethod
    def site_for_in_store(cls, value: str | None, info: ValidationInfo) -> str | None:
        machine = bool(info.context and info.context.get("machine"))
        if value is None and info.data.get("channel") == "in_store" and not machine:
            raise ValueError("required when channel is in_store")
        return value

    @field_validator("trade_in")
    @classmethod
    def trade_in_for_trade_in(
        cls, value: TradeInIn | None, info: ValidationInfo
    ) -> TradeInIn | None:
        if value is None and info.data.get("intent") == "trade_in":
            raise ValueError("required when intent is trade_in")
        return value

    @field_validator("financing_wanted")
    @classmethod
    def financing_intent(cls, value: bool, info: ValidationInfo) -> bool:
        if not value and info.data.get("intent") == "financing":
            raise ValueError("must be true when intent is financing")
        return value


class QualificationOut(BaseModel):
    lead_id: str
    operator_id: str
    qualified_at: datetime
    qualification: QualificationIn


class DisqualificationIn(Strict):
    reason: DisqualificationReason
    duplicate_of: str | None = Field(
        default=None,
        min_length=1,
        max_length=36,
        validate_default=True,
        description="Required for duplicate.",
    )
    note: str | None = Field(default=None, max_length=4000)

    @field_validator("duplicate_of")
    @classmethod
    def duplicate_needs_original(cls, value: str | None, info: ValidationInfo) -> str | None:
        reason = info.data.get("reason")
        if reason == "duplicate" and value is None:
            raise ValueError("required when reason is duplicate")
        if reason is not None and reason != "duplicate" and value is not None:
            raise ValueError("only for reason duplicate")
        return value


class DisqualificationOut(BaseModel):
    lead_id: str
    reason: DisqualificationReason
    duplicate_of: str | None
    disqualified_at: datetime


class ReopeningIn(Strict):
    reason: ReopenReason = Field(description="Why the disqualification is undone.")


class ReopeningOut(BaseModel):
    lead_id: str
    status: Literal["waiting", "contacting"]
    reason: ReopenReason
    previous_reason: DisqualificationReason
    reopened_at: datetime
    due_at: datetime
