"""Undoing a wrong merge: a manager moves some of a client's leads to a new client. Each client's
contact keys are then rebuilt from the leads it keeps, and both timelines record the split."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.repository import ClientRepository
from crm.models import Client, TimelineEntry
from shared.errors import InvalidRequest, NotFound

_CONTACT_FIELDS = ("first_name", "last_name", "full_name", "phone", "email")


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(
        message,
        errors=[
            {"field": "lead_ids", "location": "body", "type": "value_error", "message": message}
        ],
    )


def _rebuild(client: Client, entries: list[TimelineEntry]) -> None:
    """Contact keys from the leads' own receipts, the latest known value of each field."""
    receipts = sorted(
        (entry for entry in entries if entry.kind == "lead.received"),
        key=lambda entry: entry.occurred_at,
    )
    contact: dict[str, Any] = {}
    for entry in receipts:
        for name, value in (entry.details.get("contact") or {}).items():
            if value:
                contact[name] = value
    for name in _CONTACT_FIELDS:
        setattr(client, name, contact.get(name))
    if receipts:
        client.last_contact_at = receipts[-1].occurred_at


async def split_client(
    session: AsyncSession, *, client_id: str, lead_ids: list[str], by: str, now: datetime
) -> tuple[Client, Client]:
    repository = ClientRepository.from_session(session)
    client = await repository.get_with_timeline(client_id)
    if client is None:
        raise NotFound("No client has this id.")
    own_leads = {entry.lead_id for entry in client.timeline}
    moving = set(lead_ids)
    if not moving <= own_leads:
        raise _invalid("Some leads are not this client's.")
    if moving == own_leads:
        raise _invalid("Keep at least one lead on the client.")
    new_client = Client(id=str(uuid.uuid4()), created_at=now, last_contact_at=now)
    session.add(new_client)
    kept: list[TimelineEntry] = []
    moved: list[TimelineEntry] = []
    for entry in client.timeline:
        if entry.lead_id in moving:
            entry.client_id = new_client.id
            moved.append(entry)
        else:
            kept.append(entry)
    _rebuild(client, kept)
    _rebuild(new_client, moved)
    first_moved = sorted(moving)[0]
    for owner, other in ((client, new_client), (new_client, client)):
        session.add(
            TimelineEntry(
                id=str(uuid.uuid4()),
                client_id=owner.id,
                lead_id=first_moved,
                kind="client.split",
                occurred_at=now,
                source=None,
                details={"moved_lead_ids": sorted(moving), "other_client_id": other.id, "by": by},
            )
        )
    await session.flush()
    return client, new_client
