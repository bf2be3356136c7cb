"""SQL of a service's copy of the people directory and of the tokens issued to people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import stored_roles, stored_sites
from shared.db.infra import InfraTables
from shared.db.repository import Repository
from shared.events.access import PersonChangedV1, TokenIssuedV1


@dataclass(frozen=True)
class PersonRecord:
    """A person as this service knows them (what a sign-in is checked against)."""

    id: str
    name: str
    roles: frozenset[str]
    sites: frozenset[str] | None
    active: bool


class AccessRepository(Repository):
    __slots__ = ("_infra",)

    def __init__(self, session: AsyncSession, infra: InfraTables) -> None:
        super().__init__(session)
        self._infra = infra

    async def person_version(self, person_id: str) -> int | None:
        table = self._infra.access_person
        return await self.session.scalar(select(table.c.version).where(table.c.id == person_id))

    async def put_person(self, person: PersonChangedV1, *, exists: bool) -> None:
        table = self._infra.access_person
        values: dict[str, Any] = {
            "name": person.name,
            "roles": ",".join(sorted(person.roles)),
            "sites": sorted(person.sites) if person.sites is not None else None,
            "active": person.active,
            "sso_key": person.sso_key,
            "version": person.version,
            "updated_at": person.changed_at,
        }
        if exists:
            await self.session.execute(
                update(table).where(table.c.id == person.person_id).values(**values)
            )
        else:
            await self.session.execute(insert(table).values(id=person.person_id, **values))

    async def person_by_sso_key(self, sso_key: str) -> PersonRecord | None:
        table = self._infra.access_person
        # Unique in the directory; here an identity moved from one person to another may
        # briefly show on both (their events travel on different partitions): the latest wins.
        row = (
            await self.session.execute(
                select(table.c.id, table.c.name, table.c.roles, table.c.sites, table.c.active)
                .where(table.c.sso_key == sso_key)
                .order_by(table.c.updated_at.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return PersonRecord(
            id=row.id,
            name=row.name,
            roles=stored_roles(row.roles),
            sites=stored_sites(row.sites),
            active=bool(row.active),
        )

    async def names(self, actor_ids: Sequence[str]) -> dict[str, str]:
        """The names of these actors: people by their id, and tokens of nobody (machines,
        ``make token``) by the token's id. Unknown ids are left out."""
        if not actor_ids:
            return {}
        people = self._infra.access_person
        tokens = self._infra.api_token
        ids = sorted(set(actor_ids))
        found = {
            row.id: row.name
            for row in await self.session.execute(
                select(tokens.c.id, tokens.c.name).where(
                    tokens.c.id.in_(ids), tokens.c.person_id.is_(None)
                )
            )
        }
        found.update(
            {
                row.id: row.name
                for row in await self.session.execute(
                    select(people.c.id, people.c.name).where(people.c.id.in_(ids))
                )
            }
        )
        return found

    async def token_known(self, token_id: str) -> bool:
        table = self._infra.api_token
        return (
            await self.session.scalar(select(table.c.id).where(table.c.id == token_id))
        ) is not None

    async def add_token(self, token: TokenIssuedV1) -> None:
        await self.session.execute(
            insert(self._infra.api_token).values(
                id=token.token_id,
                name=token.label,
                token_hash=token.token_hash,
                roles="",  # a person's token has the person's roles (access_person)
                created_at=token.issued_at,
                person_id=token.person_id,
                expires_at=token.expires_at,
            )
        )

    async def revoke_token(self, token_id: str, at: datetime) -> bool:
        table = self._infra.api_token
        result = await self.session.execute(
            update(table)
            .where(table.c.id == token_id, table.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(getattr(result, "rowcount", 0))
