"""Event handlers of the privacy module."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from crm.privacy.exports import record_part
from crm.privacy.service import leads_of, record_completion
from shared.bus import Bus
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope, Topics
from shared.events.privacy import ErasureCompletedV1, ExportProvidedV1

log = structlog.get_logger(__name__)


def completion_handler(bus: Bus, clock: Clock) -> Handler:
    """Track each service's answer; once all answered, scrub the bus log of the leads' records
    (the embedded log deletes them; Kafka topics expire them by retention)."""

    async def on_erasure_completed(session: AsyncSession, envelope: Envelope) -> None:
        answer = ErasureCompletedV1.model_validate(envelope.data)
        if not await record_completion(session, answer, now=clock()):
            return
        lead_ids = await leads_of(session, answer.request_id)
        scrubbed = await bus.erase_keys(
            [Topics.LEADS, Topics.dlq(Topics.LEADS)], [lead.encode() for lead in lead_ids]
        )
        # Export shares travel on the privacy topic keyed by client id.
        scrubbed += await bus.erase_keys(
            [Topics.PRIVACY, Topics.dlq(Topics.PRIVACY)], [answer.client_id.encode()]
        )
        log.info(
            "privacy.erasure_completed",
            request_id=answer.request_id,
            leads=len(lead_ids),
            bus_records=scrubbed,
        )

    return on_erasure_completed


def export_provided_handler(clock: Clock) -> Handler:
    async def on_export_provided(session: AsyncSession, envelope: Envelope) -> None:
        await record_part(session, ExportProvidedV1.model_validate(envelope.data), now=clock())

    return on_export_provided
