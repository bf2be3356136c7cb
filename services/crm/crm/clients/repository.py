"""SQL of clients and their timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, case, delete, func, or_, select, tuple_
from sqlalchemy.orm import joinedload

from crm.models import Client, TimelineEntry
from shared.db.repository import Repository


class ClientRepository(Repository):
    async def find_by_phone(self, phone: str) -> Client | None:
        return await self.session.scalar(
            select(Client).where(Client.phone == phone).order_by(Client.created_at).limit(1)
        )

    async def find_by_email(self, email: str) -> Client | None:
        return await self.session.scalar(
            select(Client).where(Client.email == email).order_by(Client.created_at).limit(1)
        )

    async def find_match(self, phone: str | None, email: str | None) -> Client | None:
        """The oldest client with this phone, else the oldest with this e-mail: one statement
        (a new person, the common case, costs one round trip, not one per key)."""
        keys = []
        if phone:
            keys.append(Client.phone == phone)
        if email:
            keys.append(Client.email == email)
        if not keys:
            return None
        phone_first = [case((Client.phone == phone, 0), else_=1)] if phone else []
        return await self.session.scalar(
            select(Client).where(or_(*keys)).order_by(*phone_first, Client.created_at).limit(1)
        )

    async def timeline_entry(self, entry_id: str) -> TimelineEntry | None:
        return await self.session.get(TimelineEntry, entry_id)

    async def entries_of_lead(self, lead_id: str, *, kind: str) -> list[TimelineEntry]:
        return list(
            (
                await self.session.scalars(
                    select(TimelineEntry).where(
                        TimelineEntry.lead_id == lead_id, TimelineEntry.kind == kind
                    )
                )
            ).all()
        )

    async def client_of_lead(self, lead_id: str) -> Client | None:
        """The client whose timeline holds this lead."""
        return await self.session.scalar(
            select(Client)
            .join(TimelineEntry, TimelineEntry.client_id == Client.id)
            .where(TimelineEntry.lead_id == lead_id)
            .limit(1)
        )

    async def get_for_update(self, client_id: str) -> Client | None:
        """The client, locked until the transaction ends (two corrections do not interleave)."""
        return await self.session.scalar(
            select(Client).where(Client.id == client_id).with_for_update()
        )

    async def timeline_of(self, client_id: str) -> list[TimelineEntry]:
        return list(
            (
                await self.session.scalars(
                    select(TimelineEntry)
                    .where(TimelineEntry.client_id == client_id)
                    .order_by(TimelineEntry.occurred_at, TimelineEntry.id)
                )
            ).all()
        )

    async def get_with_timeline(self, client_id: str) -> Client | None:
        # One statement (a join, not a second SELECT): the client and its timeline come from
        # one snapshot, never a row older than the entries beside it.
        result = await self.session.scalars(
            select(Client).where(Client.id == client_id).options(joinedload(Client.timeline))
        )
        return result.unique().one_or_none()

    async def search(
        self,
        *,
        phone: str | None,
        email: str | None,
        name: str | None = None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[Client]:
        query = select(Client).options(joinedload(Client.timeline))  # one snapshot, as above
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
        return (await self.session.scalars(query)).unique().all()

    async def last_contact_before(self, cutoff: datetime, *, after: str, limit: int) -> list[str]:
        """Ids of the clients whose last own contact is older than ``cutoff``, in id order after
        ``after`` (keyset pages: memory stays flat whatever the number of clients)."""
        query = (
            select(Client.id)
            .where(Client.last_contact_at < cutoff, Client.id > after)
            .order_by(Client.id)
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def delete_timeline_of_leads(self, lead_ids: Sequence[str]) -> int:
        return await self._delete(delete(TimelineEntry).where(TimelineEntry.lead_id.in_(lead_ids)))

    async def delete(self, client_id: str) -> int:
        return await self._delete(delete(Client).where(Client.id == client_id))

    async def _delete(self, statement: Delete) -> int:
        result = cast(CursorResult[Any], await self.session.execute(statement))
        return int(result.rowcount or 0)
