"""Payload models of the events (the ``data`` of the envelope). One class per versioned type.

A new version is a new class: consumers keep reading the old one until producers stop sending it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LeadSource = Literal["facebook", "leboncoin", "lacentrale", "email", "adf", "api"]
LeadKind = Literal["enquiry", "message"]


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactV1(EventPayload):
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    email: str | None = Field(default=None, description="Case-folded e-mail address.")
    phone: str | None = Field(default=None, description="E.164 phone number.")


class VehicleV1(EventPayload):
    ad_ref: str | None = None
    url: str | None = None
    make: str | None = None
    model: str | None = None
    year: int | None = None
    price_eur: int | None = None
    mileage_km: int | None = None


class LeadReceivedV1(EventPayload):
    """A canonical lead accepted by ingest. Carries personal data (contact, message)."""

    lead_id: str
    kind: LeadKind
    source: LeadSource
    source_ref: str
    received_at: datetime
    contact: ContactV1
    vehicle: VehicleV1
    message: str | None = None
