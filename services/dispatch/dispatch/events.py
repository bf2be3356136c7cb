"""Envelopes of the events dispatch publishes (always through the outbox)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import infra
from shared.events import Envelope
from shared.events.payloads import EventPayload
from shared.outbox import enqueue
from shared.tracing import current_traceparent

EVENT_SOURCE = "/vo-leads/dispatch"


async def publish(
    session: AsyncSession, event_type: str, subject: str, payload: EventPayload
) -> None:
    """Stage the event in the outbox, in the caller's transaction (subject = lead id)."""
    envelope = Envelope(
        source=EVENT_SOURCE,
        type=event_type,
        subject=subject,
        traceparent=current_traceparent.get(),
        data=payload.model_dump(mode="json"),
    )
    await enqueue(session, infra.outbox_event, envelope)
