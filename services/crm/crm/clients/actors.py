"""Who did a timeline step, by name: entries store actor ids only (a person's id, or a machine
token's), and answers add their names from crm's copy of the people directory
(``shared.access``), so a renamed person shows renamed and no name is copied into a client's
history."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.schemas import ClientOut
from crm.models import infra
from shared.access.repository import AccessRepository

# The timeline details' keys that hold an actor id (never a seller's or a site's id).
ACTOR_KEYS: tuple[str, ...] = ("operator_id", "reassigned_by", "rectified_by", "by")


async def name_actors(session: AsyncSession, clients: Iterable[ClientOut]) -> None:
    """Fill each entry's ``actor_names`` (one query for every client of the answer)."""
    entries = [entry for client in clients for entry in client.timeline]
    ids = {
        value
        for entry in entries
        for key in ACTOR_KEYS
        if isinstance(value := entry.details.get(key), str)
    }
    names = await AccessRepository(session, infra).names(sorted(ids))
    for entry in entries:
        entry.actor_names = {
            value: names[value]
            for key in ACTOR_KEYS
            if isinstance(value := entry.details.get(key), str) and value in names
        }
