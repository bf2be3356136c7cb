"""Request and response bodies of the leads API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from shared.events.payloads import LeadKind, LeadSource
from shared.instants import Instant
from shared.normalize import normalize_email, normalize_phone


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ContactIn(Strict):
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    full_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40, description="Any format; FR default.")

    @field_validator("phone")
    @classmethod
    def phone_to_e164(cls, value: str | None) -> str | None:
        if value is None or not value:
            return None
        normalized = normalize_phone(value)
        if normalized is None:
            raise ValueError("not a valid phone number")
        return normalized

    @field_validator("email")
    @classmethod
    def email_case_folded(cls, value: str | None) -> str | None:
        if value is None or not value:
            return None
        normalized = normalize_email(value)
        if normalized is None:
            raise ValueError("not a valid e-mail address")
        return normalized

    @model_validator(mode="after")
    def full_name_from_parts(self) -> ContactIn:
        if self.full_name is None and (self.first_name or self.last_name):
            parts = [part for part in (self.first_name, self.last_name) if part]
            self.full_name = " ".join(parts)
        return self


class VehicleIn(Strict):
    ad_ref: str | None = Field(default=None, max_length=100)
    url: str | None = Field(default=None, max_length=2000)
    make: str | None = Field(default=None, max_length=60)
    model: str | None = Field(default=None, max_length=100)
    year: StrictInt | None = Field(default=None, ge=1900, le=2100)
    price_eur: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    mileage_km: StrictInt | None = Field(default=None, ge=0, le=5_000_000)


class LeadIn(Strict):
    """A canonical lead as a partner or a test posts it."""

    source: LeadSource
    source_ref: str = Field(min_length=1, max_length=200, description="The source's own id.")
    kind: LeadKind = "enquiry"
    received_at: Instant | None = Field(
        default=None, description="With its offset, from 2000 to 2100; defaults to now."
    )
    contact: ContactIn
    vehicle: VehicleIn = Field(default_factory=VehicleIn)
    message: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def reachable(self) -> LeadIn:
        if self.kind == "enquiry" and not (self.contact.phone or self.contact.email):
            raise ValueError("an enquiry needs contact.phone or contact.email")
        return self


class LeadAccepted(BaseModel):
    id: str
    status: Literal["accepted", "duplicate"]


class ContactOut(BaseModel):
    first_name: str | None
    last_name: str | None
    full_name: str | None
    email: str | None = Field(description="Validated, case-folded; may be a relay address.")
    phone: str | None = Field(description="E.164, or null when missing or invalid.")
    email_key: str | None = Field(
        default=None, description="Matching key (case-folded); null for relay addresses."
    )
    email_is_relay: bool = Field(
        default=False, description="A portal relay (reaches the buyer, identifies nobody)."
    )
    phone_raw: str | None = Field(
        default=None, description="The number as written, when it could not be normalised."
    )


class VehicleOut(BaseModel):
    ad_ref: str | None = None
    url: str | None = None
    make: str | None = None
    model: str | None = None
    year: int | None = None
    price_eur: int | None = None
    mileage_km: int | None = None


Withheld = Literal["contact", "message", "relay_email", "extra"]


class LeadOut(BaseModel):
    id: str
    kind: LeadKind
    source: LeadSource
    source_ref: str
    received_at: datetime
    contact: ContactOut | None = Field(
        description="Null when withheld: only managers, the data-protection officer and admins "
        "read any lead's contact details (operators read them in qualify's queue)."
    )
    vehicle: VehicleOut
    message: str | None = Field(description="The prospect's message; null when withheld.")
    relay_email: str | None = Field(
        default=None,
        description="A marketplace's relay address (La Centrale messaging): answers reach the "
        "buyer there; never an identity key; null when withheld.",
    )
    consents: dict[str, bool] = Field(default_factory=dict)
    extra: dict[str, Any] | None = Field(
        default_factory=dict,
        description="Source-specific answers (custom questions, ids…); null when withheld.",
    )
    raw_input_id: str | None
    withheld: list[Withheld] = Field(
        default_factory=list, description="The fields left out for this caller's roles."
    )
