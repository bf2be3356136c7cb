"""Accepting a lead draft: store it and stage ``lead.received.v1`` in one transaction.

A replay (same source and source_ref) returns the existing lead and stages nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Contact, LeadDraft, Vehicle
from ingest.canonical.instants import utc_instant
from ingest.leads.repository import LeadRepository
from ingest.leads.schemas import LeadIn
from shared.events.payloads import ContactV1, LeadReceivedV1, VehicleV1
from shared.outbox import Outbox, event_row as outbox_event_row
from shared.random_ids import uuid4_text

LEAD_RECEIVED = "lead.received.v1"


@dataclass(frozen=True)
class Acceptance:
    lead_id: str
    duplicate: bool


def draft_from_api(lead_in: LeadIn) -> LeadDraft:
    contact = lead_in.contact
    return LeadDraft(
        source=lead_in.source,
        source_ref=lead_in.source_ref,
        kind=lead_in.kind,
        received_at=lead_in.received_at,
        contact=Contact(
            first_name=contact.first_name,
            last_name=contact.last_name,
            full_name=contact.full_name,
            email=contact.email,
            email_key=contact.email,
            phone=contact.phone,
        ),
        vehicle=Vehicle(**lead_in.vehicle.model_dump()),
        message=lead_in.message,
        layout="api",
    )


def api_lead_row(lead_in: LeadIn, *, now: datetime) -> dict[str, Any]:
    """``lead_row(draft_from_api(lead_in), now=now)``, built straight from the validated body:
    the JSON intake's hot path skips the draft (three frozen dataclasses and a dump per lead).
    ``tests/ingest/test_lead_rows.py`` checks that both give the same row."""
    contact = lead_in.contact
    return {
        "id": uuid4_text(),
        "kind": lead_in.kind,
        "source": lead_in.source,
        "source_ref": lead_in.source_ref[:200],
        "received_at": utc_instant(lead_in.received_at) or now,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "full_name": contact.full_name,
        "email": contact.email,
        "email_key": contact.email,
        "email_is_relay": False,
        "phone": contact.phone,
        "phone_raw": None,
        "message": lead_in.message,
        # ``Vehicle.as_dict``: the fields given, in their order.
        "vehicle": {
            name: value for name, value in lead_in.vehicle.__dict__.items() if value is not None
        },
        "consents": None,
        "extra": None,
        "relay_email": None,
        "raw_input_id": None,
        "created_at": now,
    }


def lead_row(draft: LeadDraft, *, now: datetime, raw_input_id: str | None = None) -> dict[str, Any]:
    """The ``lead`` row of a draft, with a new id (received ``now`` unless the draft says when)."""
    contact = draft.contact
    return {
        "id": uuid4_text(),
        "kind": draft.kind,
        "source": draft.source,
        "source_ref": draft.source_ref[:200],
        "received_at": utc_instant(draft.received_at) or now,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "full_name": contact.full_name,
        "email": contact.email,
        "email_key": contact.email_key,
        "email_is_relay": contact.email_is_relay,
        "phone": contact.phone,
        "phone_raw": contact.phone_raw,
        "message": draft.message,
        "vehicle": draft.vehicle.as_dict(),
        "consents": dict(draft.consents) or None,
        "extra": dict(draft.extra) or None,
        "relay_email": draft.relay_email,
        "raw_input_id": raw_input_id,
        "created_at": now,
    }


def event_row(row: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """The outbox row of ``lead.received.v1`` for a new lead row of the JSON intake
    (``api_lead_row``), built in the caller's trace context (``source``: the service's event
    source, ``Outbox.source``)."""
    return outbox_event_row(
        source=source, event_type=LEAD_RECEIVED, subject=row["id"], payload=lead_received(row)
    )


async def accept_draft(
    session: AsyncSession,
    draft: LeadDraft,
    *,
    outbox: Outbox,
    now: datetime,
    raw_input_id: str | None = None,
) -> Acceptance:
    """Store a new lead and stage its event, or return the existing lead for a replayed source
    ref (no read before the write: the insert decides, see ``LeadRepository.insert_if_new``)."""
    values = lead_row(draft, now=now, raw_input_id=raw_input_id)
    leads = LeadRepository.from_session(session)
    if not await leads.insert_if_new(values):
        existing = await leads.get_by_source_ref(draft.source, values["source_ref"])
        if existing is None:  # pragma: no cover - the conflict row cannot vanish mid-transaction
            raise RuntimeError("lead conflict without a lead")
        return Acceptance(existing.id, duplicate=True)
    await outbox.stage(session, LEAD_RECEIVED, values["id"], lead_received(values))
    return Acceptance(values["id"], duplicate=False)


def lead_received(row: Mapping[str, Any]) -> LeadReceivedV1:
    """The ``lead.received.v1`` payload of a lead row."""
    return LeadReceivedV1(
        lead_id=row["id"],
        kind=row["kind"],
        source=row["source"],
        source_ref=row["source_ref"],
        received_at=row["received_at"],
        contact=ContactV1(
            first_name=row["first_name"],
            last_name=row["last_name"],
            full_name=row["full_name"],
            # A relay address (La Centrale's messaging) reaches the buyer but identifies
            # nobody: v1 consumers use this field as an identity key, so it is left out.
            email=None if row["email_is_relay"] else row["email"],
            phone=row["phone"],
        ),
        vehicle=VehicleV1(**row["vehicle"]),
        message=row["message"],
        relay_email=row["relay_email"],
    )
