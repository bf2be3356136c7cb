"""Rectification events as crm publishes them (``privacy.client-rectified.v1`` on the privacy
topic, key = client id), for the consumers' tests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.bus import build_bus
from shared.events import Envelope, Topics
from shared.events.privacy import ClientRectifiedV1
from shared.settings import ServiceSettings

CLIENT_RECTIFIED = "privacy.client-rectified.v1"


def rectified(lead_ids: list[str], at: datetime, **values: Any) -> Envelope:
    """A crm rectification of these leads (a new event id each call: a redelivery under another
    id must still change nothing)."""
    payload = ClientRectifiedV1.model_validate(
        {
            "client_id": values.pop("client_id", str(uuid.uuid4())),
            "lead_ids": lead_ids,
            "rectified_by": "token-of-a-manager",
            "rectified_at": at,
            **values,
        }
    )
    return Envelope(
        source="/vo-leads/crm",
        type=CLIENT_RECTIFIED,
        subject=payload.client_id,
        data=payload.model_dump(mode="json"),
    )


async def publish_privacy(settings: ServiceSettings, envelopes: list[Envelope]) -> None:
    """Publish onto the privacy topic of ``settings``' bus, as crm's outbox relay would."""
    bus = build_bus(settings)
    await bus.start()
    try:
        for envelope in envelopes:
            await bus.publish(
                Topics.PRIVACY,
                key=envelope.to_key(),
                value=envelope.to_value(),
                headers=envelope.to_headers(),
            )
    finally:
        await bus.stop()
