"""Whether a lead's contact is on the do-not-contact list (crm's objections, the whole
person), or blocked on one channel in qualify (an SMS STOP, an unsubscribe, a hard bounce)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages.state import BlockReason
from qualify.models import QueuedLead
from qualify.suppression.repository import ContactBlocks, SuppressionRepository
from shared.events.payloads import MessageChannel
from shared.privacy import contact_hash


def lead_hashes(lead: QueuedLead, key: bytes) -> list[str]:
    """The hashes the do-not-contact list knows a lead's person by (crm's objections)."""
    return [contact_hash(value, key) for value in (lead.phone, lead.email) if value]


async def contact_blocks(
    session: AsyncSession, *, suppressed: Sequence[str], blocked: Sequence[str]
) -> ContactBlocks:
    """Every do-not-contact and channel-block check of a message or a lead, in one statement."""
    return await SuppressionRepository.from_session(session).contact_blocks(suppressed, blocked)


async def is_suppressed(session: AsyncSession, lead: QueuedLead, key: bytes) -> bool:
    return await contact_suppressed(session, phone=lead.phone, email=lead.email, key=key)


async def contact_suppressed(
    session: AsyncSession, *, phone: str | None, email: str | None, key: bytes
) -> bool:
    """Whether the person of this phone or e-mail is on the do-not-contact list."""
    hashes = [contact_hash(value, key) for value in (phone, email) if value]
    if not hashes:
        return False
    return await SuppressionRepository.from_session(session).any_listed(hashes)


def address_hash(address: str, key: bytes) -> str:
    """The keyed hash of a phone (E.164) or e-mail address (case-folded)."""
    return contact_hash(address.strip().casefold() if "@" in address else address.strip(), key)


async def blocked_reason(
    session: AsyncSession, channel: MessageChannel, addresses: Sequence[str], key: bytes
) -> BlockReason | None:
    """Why ``channel`` is blocked for one of ``addresses`` (STOP, unsubscribe, hard bounce)."""
    found = await SuppressionRepository.from_session(session).blocked(
        [address_hash(address, key) for address in addresses if address], channel
    )
    return next(iter(found.values()), None)


async def block(
    session: AsyncSession,
    channel: MessageChannel,
    addresses: Sequence[str],
    *,
    reason: BlockReason,
    at: datetime,
    key: bytes,
) -> None:
    hashes = sorted({address_hash(address, key) for address in addresses if address})
    await SuppressionRepository.from_session(session).block(
        hashes, channel=channel, reason=reason, at=at
    )
