"""Access and portability (Art. 15/20): one JSON document of everything the four services hold on
a client, gathered over the bus like erasure."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm.models import Client, export_part, export_request, infra
from shared.clock import utcnow
from shared.errors import NotFound
from shared.events.privacy import ExportProvidedV1, ExportRequestedV1
from shared.outbox import stage
from shared.privacy import ERASURE_PARTICIPANTS, EXPORT_REQUESTED

EXPORT_KEPT = timedelta(days=30)

# Data the person provided themselves (Art. 20 portability): where it sits in the document.
PORTABLE_SECTIONS: tuple[str, ...] = (
    "/services/crm/client",
    "/services/ingest/lead",
    "/services/qualify/qualification",
)


class ExportProgress(BaseModel):
    request_id: str
    client_id: str
    requested_at: datetime
    status: str
    services: dict[str, bool]


async def request_export(
    session: AsyncSession, *, client_id: str, requested_by: str | None
) -> Row[Any]:
    """A new export request for this client, published to every service."""
    client = await session.scalar(
        select(Client).where(Client.id == client_id).options(selectinload(Client.timeline))
    )
    if client is None:
        raise NotFound("No client has this id.")
    now = utcnow()
    request_id = str(uuid.uuid4())
    lead_ids = sorted({entry.lead_id for entry in client.timeline})
    await session.execute(
        insert(export_request).values(
            id=request_id,
            client_id=client_id,
            requested_by=requested_by,
            requested_at=now,
            completed_at=None,
            lead_ids=lead_ids,
        )
    )
    event = ExportRequestedV1(
        request_id=request_id, client_id=client_id, lead_ids=lead_ids, requested_at=now
    )
    await stage(
        session,
        infra.outbox_event,
        source="/vo-leads/crm",
        event_type=EXPORT_REQUESTED,
        subject=client_id,
        payload=event,
    )
    row = await latest_request(session, client_id)
    assert row is not None
    return row


async def latest_request(session: AsyncSession, client_id: str) -> Row[Any] | None:
    return (
        await session.execute(
            select(export_request)
            .where(export_request.c.client_id == client_id)
            .order_by(export_request.c.requested_at.desc())
            .limit(1)
        )
    ).first()


async def parts_of(session: AsyncSession, request_id: str) -> dict[str, dict[str, Any]]:
    rows = (
        await session.execute(select(export_part).where(export_part.c.request_id == request_id))
    ).all()
    return {row.service: row.data for row in rows}


async def progress(session: AsyncSession, request: Row[Any]) -> ExportProgress:
    answered = await parts_of(session, request.id)
    return ExportProgress(
        request_id=request.id,
        client_id=request.client_id,
        requested_at=request.requested_at,
        status="completed" if request.completed_at else "in_progress",
        services={service: service in answered for service in ERASURE_PARTICIPANTS},
    )


async def document(session: AsyncSession, request: Row[Any]) -> dict[str, Any]:
    return {
        "client_id": request.client_id,
        "request_id": request.id,
        "requested_at": request.requested_at.isoformat(),
        "completed_at": request.completed_at.isoformat() if request.completed_at else None,
        "services": await parts_of(session, request.id),
        "portability": {
            "legal_basis": "GDPR Art. 20: data provided by the person",
            "sections": list(PORTABLE_SECTIONS),
        },
    }


async def export_client_data(
    session: AsyncSession, request: ExportRequestedV1
) -> dict[str, list[dict[str, Any]]]:
    """crm's own share: the client and their timeline."""
    client = await session.scalar(
        select(Client).where(Client.id == request.client_id).options(selectinload(Client.timeline))
    )
    if client is None:
        return {}
    return {
        "client": [
            {
                "id": client.id,
                "first_name": client.first_name,
                "last_name": client.last_name,
                "full_name": client.full_name,
                "phone": client.phone,
                "email": client.email,
                "created_at": client.created_at.isoformat(),
                "last_contact_at": client.last_contact_at.isoformat(),
            }
        ],
        "timeline_entry": [
            {
                "lead_id": entry.lead_id,
                "kind": entry.kind,
                "occurred_at": entry.occurred_at.isoformat(),
                "source": entry.source,
                "details": entry.details,
            }
            for entry in client.timeline
        ],
    }


async def record_part(session: AsyncSession, share: ExportProvidedV1) -> None:
    request = (
        await session.execute(select(export_request).where(export_request.c.id == share.request_id))
    ).first()
    if request is None or share.service in await parts_of(session, share.request_id):
        return
    await session.execute(
        insert(export_part).values(
            request_id=share.request_id,
            service=share.service,
            received_at=utcnow(),
            data=share.data,
        )
    )
    answered = set(await parts_of(session, share.request_id))
    if answered >= set(ERASURE_PARTICIPANTS):
        await session.execute(
            update(export_request)
            .where(export_request.c.id == share.request_id)
            .values(completed_at=utcnow())
        )


async def forget_exports(
    session: AsyncSession, *, client_id: str | None, before: datetime | None
) -> int:
    """Delete exports of a client (erasure) or older than ``before`` (retention)."""
    statement = delete(export_request)
    if client_id is not None:
        statement = statement.where(export_request.c.client_id == client_id)
    if before is not None:
        statement = statement.where(export_request.c.requested_at < before)
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
