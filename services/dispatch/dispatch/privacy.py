"""GDPR in dispatch: erasure of a client's leads (``privacy.erasure-requested.v1``, answered with
``privacy.erasure-completed.v1``) and objections (``privacy.contact-suppressed.v1``: no more
follow-ups for these contacts; the answer to a person's own new enquiry stays allowed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.clock import Clock
from dispatch.models import (
    Assignment,
    DispatchLead,
    LeadContactKey,
    Seller,
    SuppressedContact,
    WebhookDelivery,
    metadata,
)
from dispatch.timers.repository import FOLLOWUP, TimerRepository
from dispatch.webhooks.service import LEAD_ERASED, queue_webhook
from shared.clock import utcnow
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import ContactV1
from shared.events.privacy import ContactSuppressedV1, ErasureRequestedV1
from shared.normalize import normalize_email, normalize_phone
from shared.privacy import Eraser, contact_hash, lead_scoped_eraser


def contact_hashes(contact: ContactV1, key: bytes) -> list[str]:
    """Keyed hashes of the normalised phone (E.164) and e-mail (case-folded), as crm makes."""
    keys = []
    if contact.phone and (phone := normalize_phone(contact.phone)):
        keys.append(phone)
    if contact.email and (email := normalize_email(contact.email)):
        keys.append(email)
    return sorted({contact_hash(value, key) for value in keys})


async def is_suppressed(session: AsyncSession, hashes: Sequence[str]) -> bool:
    if not hashes:
        return False
    found = await session.scalar(
        select(SuppressedContact.contact_hash)
        .where(SuppressedContact.contact_hash.in_(list(hashes)))
        .limit(1)
    )
    return found is not None


async def suppress(session: AsyncSession, event: ContactSuppressedV1, now: datetime) -> int:
    """Record the objection and stop the follow-ups of the leads with these contacts."""
    for digest in sorted(set(event.contact_hashes)):
        if await session.get(SuppressedContact, digest) is None:
            session.add(
                SuppressedContact(
                    contact_hash=digest, reason=event.reason[:64], suppressed_at=event.suppressed_at
                )
            )
    lead_ids = (
        await session.scalars(
            select(LeadContactKey.lead_id)
            .where(LeadContactKey.contact_hash.in_(event.contact_hashes))
            .distinct()
        )
    ).all()
    timers = TimerRepository.from_session(session)
    for lead_id in lead_ids:
        lead = await session.get(DispatchLead, lead_id)
        if lead is not None:
            lead.followups_blocked = True
            await timers.cancel(now=now, lead_id=lead_id, kinds=(FOLLOWUP,))
    return len(lead_ids)


def suppression_handler() -> Handler:
    async def on_contact_suppressed(session: AsyncSession, envelope: Envelope) -> None:
        await suppress(session, ContactSuppressedV1.model_validate(envelope.data), utcnow())

    return on_contact_suppressed


def dispatch_eraser(clock: Clock = utcnow) -> Eraser:
    """Release the sellers' load held by the leads' open assignments, then delete every row of
    those leads (leads, assignments, timers, webhook messages and their log, contact keys,
    alerts, unpublished events)."""
    delete_rows = lead_scoped_eraser(metadata)

    async def erase(session: AsyncSession, request: ErasureRequestedV1) -> dict[str, int]:
        informed = await _sellers_who_received(session, request.lead_ids)
        if request.lead_ids:
            open_ones = (
                await session.scalars(
                    select(Assignment.seller_id).where(
                        Assignment.lead_id.in_(request.lead_ids), Assignment.is_open.is_(True)
                    )
                )
            ).all()
            for seller_id in open_ones:
                await session.execute(
                    update(Seller)
                    .where(Seller.id == seller_id)
                    .values(open_count=Seller.open_count - 1)
                )
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


async def _sellers_who_received(
    session: AsyncSession, lead_ids: Sequence[str]
) -> list[tuple[Seller, str]]:
    if not lead_ids:
        return []
    pairs = (
        await session.execute(
            select(WebhookDelivery.seller_id, WebhookDelivery.lead_id)
            .where(WebhookDelivery.lead_id.in_(lead_ids))
            .distinct()
        )
    ).all()
    informed = []
    for seller_id, lead_id in pairs:
        seller = await session.get(Seller, seller_id)
        if seller is not None and lead_id is not None:
            informed.append((seller, lead_id))
    return informed
