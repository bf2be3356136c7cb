"""The do-not-contact list as qualify sees it: keyed hashes received from crm
(``privacy.contact-suppressed.v1``). Answering the person's own enquiry stays allowed; marketing
consents cannot be recorded for them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.models import QueuedLead, SuppressedContact
from shared.events import Envelope
from shared.events.privacy import ContactSuppressedV1
from shared.privacy import contact_hash


async def on_contact_suppressed(session: AsyncSession, envelope: Envelope) -> None:
    event = ContactSuppressedV1.model_validate(envelope.data)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(SuppressedContact)
        .values(
            [
                {
                    "contact_hash": digest,
                    "reason": event.reason,
                    "suppressed_at": event.suppressed_at,
                }
                for digest in event.contact_hashes
            ]
        )
        .on_conflict_do_nothing(index_elements=["contact_hash"])
    )


async def is_suppressed(session: AsyncSession, lead: QueuedLead, key: bytes) -> bool:
    hashes = [contact_hash(value, key) for value in (lead.phone, lead.email) if value]
    if not hashes:
        return False
    count = await session.scalar(
        select(func.count())
        .select_from(SuppressedContact)
        .where(SuppressedContact.contact_hash.in_(hashes))
    )
    return bool(count)
