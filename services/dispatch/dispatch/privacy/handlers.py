"""The worker's privacy handlers: erasure of a client's leads (``privacy.erasure-requested.v1``,
answered with ``privacy.erasure-completed.v1`` by ``shared.privacy``) and objections
(``privacy.contact-suppressed.v1``: no more follow-ups for these contacts; the answer to a
person's own new enquiry stays allowed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import SuppressedContact, metadata
from dispatch.privacy.repository import PrivacyRepository
from dispatch.timers.kinds import FOLLOWUP
from dispatch.timers.repository import TimerRepository
from dispatch.webhooks.service import LEAD_ERASED, queue_webhook
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.privacy import ContactSuppressedV1, ErasureRequestedV1
from shared.privacy import Eraser, lead_scoped_eraser


async def suppress(session: AsyncSession, event: ContactSuppressedV1, now: datetime) -> int:
    """Record the objection and stop the follow-ups of the leads with these contacts."""
    privacy = PrivacyRepository(session)
    for digest in sorted(set(event.contact_hashes)):
        if await privacy.suppression(digest) is None:
            privacy.add_suppression(
                SuppressedContact(
                    contact_hash=digest, reason=event.reason[:64], suppressed_at=event.suppressed_at
                )
            )
    leads = await privacy.leads_with_contacts(event.contact_hashes)
    timers = TimerRepository(session)
    for lead in leads:
        lead.followups_blocked = True
        await timers.cancel(now=now, lead_id=lead.lead_id, kinds=(FOLLOWUP,))
    return len(leads)


def suppression_handler(clock: Clock) -> Handler:
    async def on_contact_suppressed(session: AsyncSession, envelope: Envelope) -> None:
        await suppress(session, ContactSuppressedV1.model_validate(envelope.data), clock())

    return on_contact_suppressed


def dispatch_eraser(clock: Clock) -> Eraser:
    """Release the sellers' load held by the leads' open assignments, then delete every row of
    those leads (leads, assignments, timers, webhook messages and their log, contact keys,
    alerts, unpublished events)."""
    delete_rows = lead_scoped_eraser(metadata)

    async def erase(session: AsyncSession, request: ErasureRequestedV1) -> dict[str, int]:
        privacy = PrivacyRepository(session)
        informed = await privacy.sellers_who_received(request.lead_ids)
        await privacy.release_open_assignments(request.lead_ids)
        erased = await delete_rows(session, request)
        # Sellers' tools that received a lead are told to forget it (the lead id only).
        now = clock()
        for seller, lead_id in informed:
            await queue_webhook(
                session,
                seller,
                LEAD_ERASED,
                {"lead_id": lead_id, "erased_at": now.isoformat()},
                now=now,
                lead_id=None,  # not a row of the lead: it must outlive the erasure
            )
        erased["lead_erased_webhooks"] = len(informed)
        return erased

    return erase
