"""Whether a lead's contact is on the do-not-contact list."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.models import QueuedLead
from qualify.suppression.repository import SuppressionRepository
from shared.privacy import contact_hash


async def is_suppressed(session: AsyncSession, lead: QueuedLead, key: bytes) -> bool:
    hashes = [contact_hash(value, key) for value in (lead.phone, lead.email) if value]
    if not hashes:
        return False
    return await SuppressionRepository.from_session(session).any_listed(hashes)
