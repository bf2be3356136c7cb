"""Event handler of the do-not-contact list: crm's ``privacy.contact-suppressed.v1`` in, hashes
out (same transaction as processed_event)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.suppression.repository import SuppressionRepository
from shared.events import Envelope
from shared.events.privacy import ContactSuppressedV1


async def on_contact_suppressed(session: AsyncSession, envelope: Envelope) -> None:
    event = ContactSuppressedV1.model_validate(envelope.data)
    await SuppressionRepository.from_session(session).add(
        event.contact_hashes, reason=event.reason, at=event.suppressed_at
    )
