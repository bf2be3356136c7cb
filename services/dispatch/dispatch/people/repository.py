"""SQL of the people directory: people (``person``) and their tokens (dispatch's own
``api_token`` rows with a ``person_id``: the master of every service's copy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from dispatch.models import Person, infra
from shared.db.repository import Repository


@dataclass(frozen=True)
class PersonToken:
    id: str
    person_id: str
    label: str
    token_hash: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class PeopleRepository(Repository):
    async def add(self, person: Person) -> None:
        self.session.add(person)
        await self.session.flush()

    async def person(self, person_id: str) -> Person | None:
        return await self.session.get(Person, person_id)

    async def person_for_update(self, person_id: str) -> Person | None:
        return await self.session.scalar(
            select(Person).where(Person.id == person_id).with_for_update()
        )

    async def all_for_update(self) -> Sequence[Person]:
        """Every person, locked in id order (a re-publication is never interleaved with a
        change: its events cannot overtake a later revocation's)."""
        return (
            await self.session.scalars(select(Person).order_by(Person.id).with_for_update())
        ).all()

    async def people(
        self, *, active: bool | None, seller_id: str | None, after: str | None, limit: int
    ) -> Sequence[Person]:
        query = select(Person).order_by(Person.id).limit(limit)
        if active is not None:
            query = query.where(Person.active.is_(active))
        if seller_id is not None:
            query = query.where(Person.seller_id == seller_id)
        if after is not None:
            query = query.where(Person.id > after)
        return (await self.session.scalars(query)).all()

    async def by_sso(self, issuer: str, subject: str) -> Person | None:
        return await self.session.scalar(
            select(Person).where(Person.sso_issuer == issuer, Person.sso_subject == subject)
        )

    async def tool_of_seller(self, seller_id: str) -> Person | None:
        """The machine that acts for a seller (their tool's token holder)."""
        return await self.session.scalar(
            select(Person)
            .where(Person.seller_id == seller_id, Person.kind == "machine")
            .order_by(Person.created_at)
            .limit(1)
        )

    async def tokens(self, person_id: str) -> list[PersonToken]:
        table = infra.api_token
        rows = await self.session.execute(
            select(
                table.c.id,
                table.c.name,
                table.c.token_hash,
                table.c.created_at,
                table.c.expires_at,
                table.c.revoked_at,
            )
            .where(table.c.person_id == person_id)
            .order_by(table.c.created_at, table.c.id)
        )
        return [
            PersonToken(
                id=row.id,
                person_id=person_id,
                label=row.name,
                token_hash=row.token_hash,
                created_at=row.created_at,
                expires_at=row.expires_at,
                revoked_at=row.revoked_at,
            )
            for row in rows
        ]

    async def active_token_ids(self, person_id: str) -> list[str]:
        table = infra.api_token
        return list(
            (
                await self.session.scalars(
                    select(table.c.id).where(
                        table.c.person_id == person_id, table.c.revoked_at.is_(None)
                    )
                )
            ).all()
        )
