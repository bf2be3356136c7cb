"""Event handlers of the queue: event in, queue row out (same transaction as processed_event)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.models import QueuedLead
from shared.clock import utcnow
from shared.events import Envelope
from shared.events.payloads import LeadReceivedV1

WAITING = "waiting"


async def on_lead_received(session: AsyncSession, envelope: Envelope) -> None:
    event = LeadReceivedV1.model_validate(envelope.data)
    if await session.get(QueuedLead, event.lead_id) is not None:
        return  # the same lead re-published under a new event id: already queued
    session.add(
        QueuedLead(
            lead_id=event.lead_id,
            status=WAITING,
            kind=event.kind,
            source=event.source,
            received_at=event.received_at,
            full_name=event.contact.full_name,
            phone=event.contact.phone,
            email=event.contact.email,
            ad_ref=event.vehicle.ad_ref,
            message=event.message,
            enqueued_at=utcnow(),
        )
    )
