"""SQL of the conversations: messages matched to leads, SMS sent to leads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from ingest.models import InboundMessage, OutboundSms
from shared.db.repository import Repository

_INBOUND = cast(Table, InboundMessage.__table__)
_OUTBOUND_SMS = cast(Table, OutboundSms.__table__)


class ConversationRepository(Repository):
    async def get(self, message_id: str) -> InboundMessage | None:
        return await self.session.get(InboundMessage, message_id)

    async def add_if_new(self, row: dict[str, Any]) -> bool:
        """Insert an ``inbound_message`` unless its id is known (``ON CONFLICT DO NOTHING``: of
        two concurrent deliveries of one message, one wins); True when inserted."""
        insert = self._insert()(_INBOUND).values(row).on_conflict_do_nothing(index_elements=["id"])
        inserted = await self.session.scalar(insert.returning(_INBOUND.c.id))
        return inserted is not None

    async def add_sent_sms(
        self, *, message_id: str, lead_id: str, phone_hash: str, sent_at: datetime
    ) -> None:
        """Remember an SMS sent to a lead's number (idempotent on qualify's message id)."""
        values = {
            "message_id": message_id,
            "lead_id": lead_id,
            "phone_hash": phone_hash,
            "sent_at": sent_at,
        }
        await self.session.execute(
            self._insert()(_OUTBOUND_SMS)
            .values(values)
            .on_conflict_do_nothing(index_elements=["message_id"])
        )

    async def sent_sms(self, message_id: str) -> OutboundSms | None:
        return await self.session.get(OutboundSms, message_id)

    async def last_sms_to(self, phone_hash: str) -> OutboundSms | None:
        """The most recent SMS sent to a number (any lead)."""
        return await self.session.scalar(
            select(OutboundSms)
            .where(OutboundSms.phone_hash == phone_hash)
            .order_by(OutboundSms.sent_at.desc(), OutboundSms.message_id.desc())
            .limit(1)
        )

    def _insert(self) -> Any:
        dialect = self.session.get_bind().dialect.name
        return postgresql.insert if dialect == "postgresql" else sqlite.insert
