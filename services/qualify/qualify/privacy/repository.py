"""SQL of qualify's rectification: the messages still waiting to leave for a lead."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from qualify.messages.state import QUEUED
from qualify.models import OutgoingMessage
from shared.db.repository import Repository


class RectificationRepository(Repository):
    async def queued_of_lead(self, lead_id: str) -> Sequence[OutgoingMessage]:
        """The lead's messages not yet claimed by the sender, locked (the sender's claim skips
        locked rows: it takes them with the corrected address, after this transaction)."""
        return (
            await self.session.scalars(
                select(OutgoingMessage)
                .where(OutgoingMessage.lead_id == lead_id, OutgoingMessage.status == QUEUED)
                .order_by(OutgoingMessage.created_at, OutgoingMessage.id)
                .with_for_update()
            )
        ).all()
