"""Applying the access events to a service's tables: the same functions run in every service's
consumer and in dispatch's own transaction when its directory changes (so dispatch refuses a
revoked token with the very request that revoked it).

Idempotent and order-tolerant: a person's record is replaced only by a newer ``version``; a
token is inserted once and its revocation is final (a late or re-published "issued" never
brings a revoked token back)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared.access.repository import AccessRepository
from shared.db.infra import InfraTables
from shared.events.access import PersonChangedV1, TokenIssuedV1, TokenRevokedV1


async def apply_person(session: AsyncSession, infra: InfraTables, person: PersonChangedV1) -> bool:
    """Store the record unless a newer version is already here; True when it changed."""
    repository = AccessRepository(session, infra)
    version = await repository.person_version(person.person_id)
    if version is not None and version >= person.version:
        return False
    await repository.put_person(person, exists=version is not None)
    return True


async def apply_token_issued(
    session: AsyncSession, infra: InfraTables, token: TokenIssuedV1
) -> bool:
    repository = AccessRepository(session, infra)
    if await repository.token_known(token.token_id):
        return False
    await repository.add_token(token)
    return True


async def apply_token_revoked(
    session: AsyncSession, infra: InfraTables, revoked: TokenRevokedV1
) -> bool:
    """A token this service never received cannot be used here: nothing to do then."""
    return await AccessRepository(session, infra).revoke_token(revoked.token_id, revoked.revoked_at)
