"""Envelopes of the events dispatch publishes (always through the outbox)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import infra
from shared.events.payloads import EventPayload
from shared.outbox import stage

EVENT_SOURCE = "/vo-leads/dispatch"


async def publish(
    session: AsyncSession, event_type: str, subject: str, payload: EventPayload
) -> None:
    """Stage the event in the outbox, in the caller's transaction (subject = lead id)."""
    await stage(
        session,
        infra.outbox_event,
        source=EVENT_SOURCE,
        event_type=event_type,
        subject=subject,
        payload=payload,
    )
