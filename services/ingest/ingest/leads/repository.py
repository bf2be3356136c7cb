"""SQL of the leads module."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.models import Lead


class LeadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> LeadRepository:
        return cls(session)

    async def get(self, lead_id: str) -> Lead | None:
        return await self.session.get(Lead, lead_id)

    async def get_by_source_ref(self, source: str, source_ref: str) -> Lead | None:
        return await self.session.scalar(
            select(Lead).where(Lead.source == source, Lead.source_ref == source_ref)
        )
