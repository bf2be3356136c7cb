"""A new lead's person resolved: what its receipt writes once the client it matches is known (a
new client, or the changes to the client found) and its first timeline entry. Pure: the
statements are ``ClientRepository``'s (at once, or for a transaction's receipts together)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crm.clients.identity import identity_email
from shared.events.payloads import LeadReceivedV1

if TYPE_CHECKING:  # the repository resolves receipts: no import at run time
    from crm.clients.repository import StoredClient


@dataclass(frozen=True)
class Receipt:
    """A lead's receipt: the person's keys and names, and its entry but ``client_id`` (and the
    key it matched on)."""

    entry: dict[str, Any]
    person: dict[str, Any]  # first_name, last_name, full_name, phone, email (identity key)
    received_at: datetime
    now: datetime  # a new client's creation

    @classmethod
    def of(cls, event: LeadReceivedV1, entry_id: str, *, now: datetime) -> Receipt:
        contact = event.contact
        email_key = identity_email(contact.email)
        person = {
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "full_name": contact.full_name,
            "phone": contact.phone,
            "email": email_key,
        }
        entry = {
            "id": entry_id,
            "lead_id": event.lead_id,
            "kind": "lead.received",
            "occurred_at": event.received_at,
            "source": event.source,
            "details": {
                "kind": event.kind,
                "source_ref": event.source_ref,
                "ad_ref": event.vehicle.ad_ref,
            },
        }
        return cls(entry, person, event.received_at, now)

    @property
    def phone(self) -> str | None:
        phone: str | None = self.person["phone"]
        return phone

    @property
    def email(self) -> str | None:
        email: str | None = self.person["email"]
        return email


@dataclass(frozen=True)
class Resolved:
    entry: dict[str, Any]  # with ``client_id``
    new_client: dict[str, Any] | None  # the client to insert (no match)
    changes: dict[str, Any]  # to the client found: the columns it lacked, its last contact


def resolve(receipt: Receipt, found: StoredClient | None) -> Resolved:
    """The receipt on the client ``found`` (the oldest with its phone, else with its e-mail), or
    on a new one."""
    phone = receipt.phone
    matched_on = "new" if found is None else "phone" if phone and found.phone == phone else "email"
    details = {
        **receipt.entry["details"],
        "matched_on": matched_on,
        # The keys this lead brought: what a manager reads to judge (or split) a merge.
        "contact": dict(receipt.person),
    }
    entry = {**receipt.entry, "details": details}
    if found is None:
        client = {
            "id": str(uuid.uuid4()),
            **receipt.person,
            "created_at": receipt.now,
            "last_contact_at": receipt.received_at,
        }
        return Resolved({**entry, "client_id": client["id"]}, client, {})
    person = receipt.person
    merged = {
        "phone": found.phone or person["phone"],
        "email": found.email or person["email"],
        "first_name": found.first_name or person["first_name"],
        "last_name": found.last_name or person["last_name"],
        "full_name": found.full_name or person["full_name"],
        "last_contact_at": max(found.last_contact_at, receipt.received_at),
    }
    changes = {key: value for key, value in merged.items() if getattr(found, key) != value}
    return Resolved({**entry, "client_id": found.id}, None, changes)
