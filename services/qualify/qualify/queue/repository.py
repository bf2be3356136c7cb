"""SQL of the queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.models import QueuedLead


class QueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> QueueRepository:
        return cls(session)

    async def page(
        self,
        *,
        status: str,
        source: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[QueuedLead]:
        """Oldest first, keyset-paginated on (received_at, lead_id)."""
        query = select(QueuedLead).where(QueuedLead.status == status)
        if source is not None:
            query = query.where(QueuedLead.source == source)
        if after is not None:
            received_at, lead_id = after
            query = query.where(
                tuple_(QueuedLead.received_at, QueuedLead.lead_id) > tuple_(received_at, lead_id)
            )
        query = query.order_by(QueuedLead.received_at, QueuedLead.lead_id).limit(limit)
        return (await self.session.scalars(query)).all()
