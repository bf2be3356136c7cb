"""SQL of the quarantine and the ignored inputs (keyset pages, newest first)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.models import IgnoredInput, QuarantinedInput


class QuarantineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> QuarantineRepository:
        return cls(session)

    async def get(self, quarantine_id: str) -> QuarantinedInput | None:
        return await self.session.get(QuarantinedInput, quarantine_id)

    async def page(
        self, *, status: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[QuarantinedInput]:
        table = QuarantinedInput
        statement = select(table).order_by(table.created_at.desc(), table.id.desc()).limit(limit)
        if status is not None:
            statement = statement.where(table.status == status)
        if after is not None:
            moment, key = after
            statement = statement.where(
                or_(table.created_at < moment, and_(table.created_at == moment, table.id < key))
            )
        return list(await self.session.scalars(statement))

    async def ignored_page(
        self, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[IgnoredInput]:
        table = IgnoredInput
        statement = select(table).order_by(table.created_at.desc(), table.id.desc()).limit(limit)
        if after is not None:
            moment, key = after
            statement = statement.where(
                or_(table.created_at < moment, and_(table.created_at == moment, table.id < key))
            )
        return list(await self.session.scalars(statement))
