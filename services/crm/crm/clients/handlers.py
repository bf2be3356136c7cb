"""Event handlers of clients: resolve the person, then append to their timeline."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.identity import identity_email
from crm.clients.repository import ClientRepository, StoredClient
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import LeadReceivedV1


def lead_received_handler(clock: Clock) -> Handler:
    """Resolve the person of a new lead (``clock`` stamps a new client's creation)."""

    async def on_lead_received(session: AsyncSession, envelope: Envelope) -> None:
        await resolve_client(
            session, LeadReceivedV1.model_validate(envelope.data), envelope.id, now=clock()
        )

    return on_lead_received


async def resolve_client(
    session: AsyncSession, event: LeadReceivedV1, entry_id: str, *, now: datetime
) -> None:
    repository = ClientRepository.from_session(session)
    contact = event.contact
    email_key = identity_email(contact.email)
    seen, found = await repository.seen_and_match(entry_id, contact.phone, email_key)
    if seen:
        return
    matched_on = "new" if found is None else _matched_on(found, contact.phone)
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
            "matched_on": matched_on,
            # The keys this lead brought: what a manager reads to judge (or split) a merge.
            "contact": {
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "full_name": contact.full_name,
                "phone": contact.phone,
                "email": email_key,
            },
        },
    }
    if found is None:
        client = {
            "id": str(uuid.uuid4()),
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "full_name": contact.full_name,
            "phone": contact.phone,
            "email": email_key,
            "created_at": now,
            "last_contact_at": event.received_at,
        }
        await repository.insert_client_and_entry(client, entry)
        return
    merged = {
        "phone": found.phone or contact.phone,
        "email": found.email or email_key,
        "first_name": found.first_name or contact.first_name,
        "last_name": found.last_name or contact.last_name,
        "full_name": found.full_name or contact.full_name,
        "last_contact_at": max(found.last_contact_at, event.received_at),
    }
    changes = {key: value for key, value in merged.items() if getattr(found, key) != value}
    if changes:
        await repository.update_client(found.id, changes)
    await repository.insert_entry({**entry, "client_id": found.id})


def _matched_on(found: StoredClient, phone: str | None) -> str:
    return "phone" if phone and found.phone == phone else "email"
