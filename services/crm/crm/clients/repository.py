"""SQL of clients and their timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm.models import Client, TimelineEntry


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> ClientRepository:
        return cls(session)

    async def find_by_phone(self, phone: str) -> Client | None:
        return await self.session.scalar(
            select(Client).where(Client.phone == phone).order_by(Client.created_at).limit(1)
        )

    async def find_by_email(self, email: str) -> Client | None:
        return await self.session.scalar(
            select(Client).where(Client.email == email).order_by(Client.created_at).limit(1)
        )

    async def timeline_entry(self, entry_id: str) -> TimelineEntry | None:
        return await self.session.get(TimelineEntry, entry_id)

    async def get_with_timeline(self, client_id: str) -> Client | None:
        return await self.session.scalar(
            select(Client).where(Client.id == client_id).options(selectinload(Client.timeline))
        )

    async def search(
        self,
        *,
        phone: str | None,
        email: str | None,
        name: str | None = None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[Client]:
        query = select(Client).options(selectinload(Client.timeline))
        if phone is not None:
            query = query.where(Client.phone == phone)
        if email is not None:
            query = query.where(Client.email == email)
        if name is not None:
            query = query.where(
                func.lower(Client.full_name).contains(name.lower(), autoescape=True)
            )
        if after is not None:
            query = query.where(tuple_(Client.created_at, Client.id) > tuple_(*after))
        query = query.order_by(Client.created_at, Client.id).limit(limit)
        return (await self.session.scalars(query)).all()
