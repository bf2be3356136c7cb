"""Envelopes of the events qualify publishes (always through the outbox)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.models import infra
from shared.events.payloads import EventPayload
from shared.outbox import stage

EVENT_SOURCE = "/vo-leads/qualify"


async def publish(
    session: AsyncSession, event_type: str, lead_id: str, payload: EventPayload
) -> None:
    """Stage the event in the outbox, in the caller's transaction."""
    await stage(
        session,
        infra.outbox_event,
        source=EVENT_SOURCE,
        event_type=event_type,
        subject=lead_id,
        payload=payload,
    )
