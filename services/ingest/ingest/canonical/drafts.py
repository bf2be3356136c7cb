"""Parser results. Parsers never raise: they return one of these outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.canonical.contacts import contact_from_raw
from shared.events.payloads import LeadKind, LeadSource

# The event's lists (one source of truth): a draft becomes a ``lead.received.v1``.
Kind = LeadKind
Source = LeadSource


@dataclass(frozen=True)
class Contact:
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    email: str | None = None  # validated, domain lower-cased… then case-folded
    email_key: str | None = None  # the matching key; None for relay addresses
    email_is_relay: bool = False
    phone: str | None = None  # E.164
    phone_raw: str | None = None  # kept when the number could not be normalised

    @classmethod
    def from_raw(
        cls,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        full_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
    ) -> Contact:
        return cls(
            **contact_from_raw(
                first_name=first_name,
                last_name=last_name,
                full_name=full_name,
                email=email,
                phone=phone,
            )
        )

    @property
    def reachable(self) -> bool:
        return bool(self.email or self.phone or self.phone_raw)


@dataclass(frozen=True)
class Vehicle:
    ad_ref: str | None = None
    url: str | None = None
    make: str | None = None
    model: str | None = None
    year: int | None = None
    price_eur: int | None = None
    mileage_km: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass(frozen=True)
class LeadDraft:
    source: Source
    source_ref: str
    kind: Kind = "enquiry"
    received_at: datetime | None = None
    contact: Contact = field(default_factory=Contact)
    vehicle: Vehicle = field(default_factory=Vehicle)
    message: str | None = None
    consents: dict[str, bool] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    layout: str = ""  # which parser produced it (for metrics and docs, never personal)
    # A marketplace's relay address (answers reach the buyer through it); never an identity key.
    relay_email: str | None = None


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class Quarantine:
    reason: str
    detail: str | None = None  # names of fields or exception types only


Outcome = LeadDraft | Ignore | Quarantine
