"""Bodies of the directory API: sites, sellers, contact schedules, vehicle stock."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    StrictInt,
    UrlConstraints,
    field_validator,
    model_validator,
)

from shared.business_time import BusinessCalendar, CalendarError, parse_weekly_hours
from shared.instants import Instant

SellerMode = Literal["in_store", "full_web"]
WEBHOOK_URL_MAX = 500  # the column's length


def _fits_the_column(url: HttpUrl) -> HttpUrl:
    if len(str(url)) > WEBHOOK_URL_MAX:
        raise ValueError(f"longer than {WEBHOOK_URL_MAX} characters once encoded")
    return url


# http(s) only; where it may point (no loopback, private or link-local address, no credentials)
# depends on the configuration: checked by the routes (``dispatch.webhooks.destinations``).
WebhookUrl = Annotated[
    HttpUrl, UrlConstraints(max_length=WEBHOOK_URL_MAX), AfterValidator(_fits_the_column)
]
SiteId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Skill = Annotated[str, Field(pattern=r"^[a-z0-9_:.-]{1,40}$")]


def _hours(spec: str) -> str:
    try:
        parse_weekly_hours(spec)
    except CalendarError as exc:
        raise ValueError(str(exc)) from None
    return spec


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone") from None
    return name


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteIn(_In):
    id: SiteId
    name: str = Field(min_length=1, max_length=120)
    postcode: str = Field(pattern=r"^\d{5}$")
    timezone: str = "Europe/Paris"
    opening_hours: str = Field(
        max_length=400,
        description='Weekly hours with breaks: "mon-fri 09:00-12:00,14:00-19:00; sat 09:00-12:00".',
    )
    holiday_subdivision: str | None = Field(
        default=None,
        max_length=8,
        description='Subdivision of the `holidays` library: "57", "67", "68" (Alsace-Moselle)…',
    )
    closures: list[date] = Field(default_factory=list, max_length=366)
    full_web_fallback: StrictBool = Field(
        default=False, description="Route to the full-web pool when closed beyond the delay."
    )
    fallback_after_minutes: StrictInt = Field(default=120, ge=0, le=7 * 24 * 60)
    manager_seller_id: str | None = Field(default=None, max_length=36)

    _check_hours = field_validator("opening_hours")(_hours)
    _check_timezone = field_validator("timezone")(_timezone)

    @model_validator(mode="after")
    def _calendar_opens(self) -> Self:
        try:
            BusinessCalendar.from_spec(
                self.opening_hours, timezone=self.timezone, subdivision=self.holiday_subdivision
            )
        except CalendarError as exc:
            raise ValueError(str(exc)) from None
        return self


class SiteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    postcode: str
    timezone: str
    opening_hours: str
    holiday_subdivision: str | None
    closures: list[date]
    full_web_fallback: bool
    fallback_after_minutes: int
    manager_seller_id: str | None
    open_now: bool | None = None


class Absence(_In):
    start: Instant
    end: Instant

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end must carry a time zone")
        if self.end <= self.start:
            raise ValueError("an absence must end after it starts")
        return self


def _absences(absences: list[Absence]) -> list[Absence]:
    ordered = sorted(absences, key=lambda absence: absence.start)
    for first, second in itertools.pairwise(ordered):
        if second.start < first.end:
            raise ValueError("absences overlap")
    return ordered


def merge_absence(absences: list[dict[str, str]], absence: Absence) -> list[Absence]:
    """A seller's stored absences plus one more, ordered (ValueError when they overlap)."""
    stored = [Absence.model_validate(entry) for entry in absences]
    return _absences([*stored, absence])


class SellerIn(_In):
    display_name: str = Field(min_length=1, max_length=120)
    mode: SellerMode
    site_id: SiteId | None = None
    skills: list[Skill] = Field(default_factory=list, max_length=50)
    capacity: StrictInt = Field(default=10, ge=1, le=1000)
    shifts: str = Field(
        default="mon-fri 09:00-12:30,14:00-19:00",
        max_length=400,
        description="Weekly shifts; overlapping intervals are refused (422).",
    )
    absences: list[Absence] = Field(default_factory=list, max_length=100)
    active: StrictBool = True
    webhook_url: WebhookUrl | None = Field(
        default=None, description="http(s) endpoint of the seller's tool; a public address."
    )
    webhook_secret: str | None = Field(
        default=None,
        pattern=r"^whsec_[A-Za-z0-9+/=]{32,100}$",
        description="Standard Webhooks secret; generated when a URL comes without one.",
    )

    _check_shifts = field_validator("shifts")(_hours)
    _check_absences = field_validator("absences")(_absences)

    @model_validator(mode="after")
    def _site_for_in_store(self) -> Self:
        if self.mode == "in_store" and self.site_id is None:
            raise ValueError("an in_store seller needs a site_id")
        return self


class SellerPatch(_In):
    display_name: str | None = Field(default=None, min_length=1, max_length=120)
    skills: list[Skill] | None = Field(default=None, max_length=50)
    capacity: StrictInt | None = Field(default=None, ge=1, le=1000)
    shifts: str | None = Field(default=None, max_length=400)
    absences: list[Absence] | None = Field(default=None, max_length=100)
    active: StrictBool | None = None
    webhook_url: WebhookUrl | None = Field(
        default=None, description="http(s) endpoint of the seller's tool; a public address."
    )
    webhook_secret: str | None = Field(default=None, pattern=r"^whsec_[A-Za-z0-9+/=]{32,100}$")

    @field_validator("shifts")
    @classmethod
    def _check_shifts(cls, value: str | None) -> str | None:
        return None if value is None else _hours(value)

    @field_validator("absences")
    @classmethod
    def _check_absences(cls, value: list[Absence] | None) -> list[Absence] | None:
        return None if value is None else _absences(value)


class SellerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    display_name: str
    mode: SellerMode
    site_id: str | None
    skills: list[str]
    capacity: int
    shifts: str
    absences: list[Absence]
    active: bool
    open_count: int
    webhook_url: str | None
    webhook_disabled_at: datetime | None
    webhook_disabled_reason: str | None
    webhook_failures: int


class SellerCreated(SellerOut):
    webhook_secret: str | None = Field(
        default=None, description="Shown once, at creation (the tool verifies signatures)."
    )


class SellerToken(BaseModel):
    seller_id: str
    token: str = Field(description="Bearer token with the seller role, shown once.")


class ScheduleIn(_In):
    source: str | None = Field(default=None, max_length=32)
    site_id: SiteId | None = None
    accept_within_minutes: StrictInt = Field(default=10, ge=1, le=24 * 60)
    first_contact_within_minutes: StrictInt = Field(default=60, ge=1, le=7 * 24 * 60)
    followup_days: list[StrictInt] = Field(default_factory=lambda: [1, 3, 7], max_length=20)
    escalation_seller_id: str | None = Field(default=None, max_length=36)

    @field_validator("followup_days")
    @classmethod
    def _increasing(cls, days: list[int]) -> list[int]:
        if any(day < 1 for day in days):
            raise ValueError("follow-up days must be positive")
        if any(b <= a for a, b in itertools.pairwise(days)):
            raise ValueError("follow-up days must increase")
        return days


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    source: str | None
    site_id: str | None
    accept_within_minutes: int
    first_contact_within_minutes: int
    followup_days: list[int]
    escalation_seller_id: str | None


class VehicleIn(_In):
    site_id: SiteId
    make: str | None = Field(default=None, min_length=1, max_length=60)


class VehicleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ad_ref: str
    site_id: str
    make: str | None
    sold_at: datetime | None


class CalendarsPublished(BaseModel):
    published: int = Field(description="Calendars published: every site's and the full-web pool.")
