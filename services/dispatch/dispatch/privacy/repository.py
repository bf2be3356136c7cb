"""SQL of dispatch's privacy: the leads' contact hashes, objections, and what an erasure must
release or tell before the leads' rows go."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, bindparam, delete, insert, select, update

from dispatch.models import (
    Assignment,
    DispatchLead,
    LeadContactKey,
    Seller,
    SuppressedContact,
    WebhookDelivery,
)
from dispatch.routing.repository import pool_released
from shared.db.repository import Repository

_ANY_SUPPRESSED = (
    select(SuppressedContact.contact_hash)
    .where(SuppressedContact.contact_hash.in_(bindparam("hashes", expanding=True)))
    .limit(1)
)
_INSERT_CONTACT_KEY = insert(cast(Table, LeadContactKey.__table__))


class PrivacyRepository(Repository):
    async def add_contact_keys(self, lead_id: str, hashes: Sequence[str]) -> None:
        """The lead's contact hashes, in one prebuilt INSERT of every row (the lead is written)."""
        if hashes:
            with self.session.no_autoflush:  # pending changes wait for the step's next flush
                await self.session.execute(
                    _INSERT_CONTACT_KEY,
                    [{"lead_id": lead_id, "contact_hash": digest} for digest in hashes],
                )

    async def replace_contact_keys(self, lead_id: str, hashes: Sequence[str]) -> None:
        """The lead's contact hashes after a rectification (the old ones go)."""
        await self.session.execute(delete(LeadContactKey).where(LeadContactKey.lead_id == lead_id))
        await self.add_contact_keys(lead_id, hashes)

    async def messages_of_lead(self, lead_id: str) -> Sequence[WebhookDelivery]:
        """Every message kept for the lead (for retries, replay and the sellers' feed)."""
        return (
            await self.session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.lead_id == lead_id)
            )
        ).all()

    async def is_suppressed(self, hashes: Sequence[str]) -> bool:
        """Whether any of these contacts objected."""
        if not hashes:
            return False
        found = await self.session.scalar(_ANY_SUPPRESSED, {"hashes": list(hashes)})
        return found is not None

    async def suppression(self, contact_hash: str) -> SuppressedContact | None:
        return await self.session.get(SuppressedContact, contact_hash)

    def add_suppression(self, suppression: SuppressedContact) -> None:
        self.session.add(suppression)

    async def leads_with_contacts(self, hashes: Sequence[str]) -> Sequence[DispatchLead]:
        """The leads whose phone or e-mail has one of these hashes."""
        lead_ids = (
            await self.session.scalars(
                select(LeadContactKey.lead_id)
                .where(LeadContactKey.contact_hash.in_(list(hashes)))
                .distinct()
            )
        ).all()
        leads = []
        for lead_id in lead_ids:
            lead = await self.session.get(DispatchLead, lead_id)
            if lead is not None:
                leads.append(lead)
        return leads

    async def release_open_assignments(self, lead_ids: Sequence[str]) -> None:
        """Give back the sellers' load held by these leads' open assignments."""
        if not lead_ids:
            return
        seller_ids = (
            await self.session.scalars(
                select(Assignment.seller_id).where(
                    Assignment.lead_id.in_(lead_ids), Assignment.is_open.is_(True)
                )
            )
        ).all()
        for seller_id in seller_ids:
            await self.session.execute(
                update(Seller)
                .where(Seller.id == seller_id)
                .values(open_count=Seller.open_count - 1)
            )
        pool_released(self.session)

    async def sellers_who_received(self, lead_ids: Sequence[str]) -> list[tuple[Seller, str]]:
        """(seller, lead id) for every seller whose tool was sent a message about these leads."""
        if not lead_ids:
            return []
        pairs = (
            await self.session.execute(
                select(WebhookDelivery.seller_id, WebhookDelivery.lead_id)
                .where(WebhookDelivery.lead_id.in_(lead_ids))
                .distinct()
            )
        ).all()
        informed = []
        for seller_id, lead_id in pairs:
            seller = await self.session.get(Seller, seller_id)
            if seller is not None and lead_id is not None:
                informed.append((seller, lead_id))
        return informed
