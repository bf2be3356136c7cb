"""Envelopes of the events qualify publishes (always through the outbox)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.models import infra
from shared.events import Envelope
from shared.events.payloads import EventPayload
from shared.outbox import enqueue
from shared.tracing import current_traceparent

EVENT_SOURCE = "/vo-leads/qualify"


async def publish(
    session: AsyncSession, event_type: str, lead_id: str, payload: EventPayload
) -> None:
    """Stage the event in the outbox, in the caller's transaction."""
    envelope = Envelope(
        source=EVENT_SOURCE,
        type=event_type,
        subject=lead_id,
        traceparent=current_traceparent.get(),
        data=payload.model_dump(mode="json"),
    )
    await enqueue(session, infra.outbox_event, envelope)
