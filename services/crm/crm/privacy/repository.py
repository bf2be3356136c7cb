"""SQL of erasure requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import erasure_progress, erasure_request


class ErasureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> ErasureRepository:
        return cls(session)

    async def get(self, request_id: str) -> Row[Any] | None:
        return (
            await self.session.execute(
                select(erasure_request).where(erasure_request.c.id == request_id)
            )
        ).first()

    async def by_client(self, client_id: str) -> Row[Any] | None:
        return (
            await self.session.execute(
                select(erasure_request).where(erasure_request.c.client_id == client_id)
            )
        ).first()

    async def open_requests(self, limit: int) -> Sequence[Row[Any]]:
        query = (
            select(erasure_request)
            .where(erasure_request.c.completed_at.is_(None))
            .order_by(erasure_request.c.due_at)
            .limit(limit)
        )
        return (await self.session.execute(query)).all()

    async def add(self, **values: Any) -> None:
        await self.session.execute(insert(erasure_request).values(**values))

    async def progress(self, request_id: str) -> Sequence[Row[Any]]:
        return (
            await self.session.execute(
                select(erasure_progress).where(erasure_progress.c.request_id == request_id)
            )
        ).all()

    async def add_progress(self, **values: Any) -> None:
        await self.session.execute(insert(erasure_progress).values(**values))

    async def complete(self, request_id: str, completed_at: Any) -> None:
        await self.session.execute(
            update(erasure_request)
            .where(erasure_request.c.id == request_id, erasure_request.c.completed_at.is_(None))
            .values(completed_at=completed_at)
        )
