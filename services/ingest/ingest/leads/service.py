"""Accepting a canonical lead: store it and stage ``lead.received.v1`` in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.leads.repository import LeadRepository
from ingest.leads.schemas import LeadIn
from ingest.models import Lead, infra
from shared.clock import utcnow
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadReceivedV1, VehicleV1
from shared.outbox import enqueue
from shared.tracing import current_traceparent

EVENT_SOURCE = "/vo-leads/ingest"


@dataclass(frozen=True)
class Acceptance:
    lead_id: str
    duplicate: bool


async def accept(session: AsyncSession, *, lead_in: LeadIn) -> Acceptance:
    """Store a new lead and its event, or return the existing lead for a replayed source ref."""
    repository = LeadRepository.from_session(session)
    existing = await repository.get_by_source_ref(lead_in.source, lead_in.source_ref)
    if existing is not None:
        return Acceptance(existing.id, duplicate=True)
    now = utcnow()
    lead = Lead(
        id=str(uuid.uuid4()),
        kind=lead_in.kind,
        source=lead_in.source,
        source_ref=lead_in.source_ref,
        received_at=lead_in.received_at or now,
        first_name=lead_in.contact.first_name,
        last_name=lead_in.contact.last_name,
        full_name=lead_in.contact.full_name,
        email=lead_in.contact.email,
        phone=lead_in.contact.phone,
        message=lead_in.message,
        vehicle=lead_in.vehicle.model_dump(exclude_none=True),
        raw_input_id=None,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(lead)
            await session.flush()
    except IntegrityError:
        # The same source ref was accepted concurrently: that lead is the answer.
        winner = await repository.get_by_source_ref(lead_in.source, lead_in.source_ref)
        if winner is None:
            raise
        return Acceptance(winner.id, duplicate=True)
    await enqueue(session, infra.outbox_event, lead_received_event(lead))
    return Acceptance(lead.id, duplicate=False)


def lead_received_event(lead: Lead) -> Envelope:
    payload = LeadReceivedV1(
        lead_id=lead.id,
        kind=lead.kind,  # type: ignore[arg-type]
        source=lead.source,  # type: ignore[arg-type]
        source_ref=lead.source_ref,
        received_at=lead.received_at,
        contact=ContactV1(
            first_name=lead.first_name,
            last_name=lead.last_name,
            full_name=lead.full_name,
            email=lead.email,
            phone=lead.phone,
        ),
        vehicle=VehicleV1(**lead.vehicle),
        message=lead.message,
    )
    return Envelope(
        source=EVENT_SOURCE,
        type="lead.received.v1",
        subject=lead.id,
        traceparent=current_traceparent.get(),
        data=payload.model_dump(mode="json"),
    )
