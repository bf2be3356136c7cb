"""Which seller of the directory a caller acts for."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.directory.repository import DirectoryRepository
from dispatch.models import Seller
from dispatch.people.repository import PeopleRepository
from shared.auth import Principal


async def seller_of_caller(session: AsyncSession, caller: Principal) -> Seller | None:
    """A person's seller (their record's ``seller_id``); else the seller a token was issued to
    before people existed (``seller.token_id``)."""
    directory = DirectoryRepository(session)
    if caller.person_id is not None:
        person = await PeopleRepository(session).person(caller.person_id)
        if person is None or person.seller_id is None or not person.active:
            return None
        return await directory.seller(person.seller_id)
    return await directory.seller_by_token(caller.credential_id or caller.token_id)
