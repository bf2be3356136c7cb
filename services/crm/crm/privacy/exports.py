"""Access and portability (Art. 15/20): one JSON document of everything the four services hold on
a client, gathered over the bus like erasure."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.repository import ClientRepository
from crm.privacy.models import ExportPart, ExportRequest
from crm.privacy.repository import ExportRepository
from crm.privacy.schemas import ExportProgress
from shared.errors import NotFound
from shared.events.privacy import ExportProvidedV1, ExportRequestedV1
from shared.outbox import Outbox
from shared.privacy import ERASURE_PARTICIPANTS, EXPORT_REQUESTED

EXPORT_KEPT = timedelta(days=30)

# Data the person provided themselves (Art. 20 portability): where it sits in the document.
PORTABLE_SECTIONS: tuple[str, ...] = (
    "/services/crm/client",
    "/services/ingest/lead",
    "/services/qualify/qualification",
)


async def request_export(
    session: AsyncSession,
    outbox: Outbox,
    *,
    client_id: str,
    requested_by: str | None,
    now: datetime,
) -> ExportRequest:
    """A new export request for this client, published to every service."""
    client = await ClientRepository.from_session(session).get_with_timeline(client_id)
    if client is None:
        raise NotFound("No client has this id.")
    request = ExportRequest(
        id=str(uuid.uuid4()),
        client_id=client_id,
        requested_by=requested_by,
        requested_at=now,
        completed_at=None,
        lead_ids=sorted({entry.lead_id for entry in client.timeline}),
    )
    await ExportRepository.from_session(session).add(request)
    event = ExportRequestedV1(
        request_id=request.id,
        client_id=client_id,
        lead_ids=request.lead_ids,
        requested_at=request.requested_at,
    )
    await outbox.stage(session, EXPORT_REQUESTED, client_id, event)
    return request


async def progress(session: AsyncSession, request: ExportRequest) -> ExportProgress:
    answered = await ExportRepository.from_session(session).answered(request.id)
    return ExportProgress(
        request_id=request.id,
        client_id=request.client_id,
        requested_at=request.requested_at,
        status="completed" if request.completed_at else "in_progress",
        services={service: service in answered for service in ERASURE_PARTICIPANTS},
    )


async def document(session: AsyncSession, request: ExportRequest) -> dict[str, Any]:
    return {
        "client_id": request.client_id,
        "request_id": request.id,
        "requested_at": request.requested_at.isoformat(),
        "completed_at": request.completed_at.isoformat() if request.completed_at else None,
        "services": await ExportRepository.from_session(session).parts(request.id),
        "portability": {
            "legal_basis": "GDPR Art. 20: data provided by the person",
            "sections": list(PORTABLE_SECTIONS),
        },
    }


async def export_client_data(
    session: AsyncSession, request: ExportRequestedV1
) -> dict[str, list[dict[str, Any]]]:
    """crm's own share: the client and their timeline."""
    client = await ClientRepository.from_session(session).get_with_timeline(request.client_id)
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


async def record_part(session: AsyncSession, share: ExportProvidedV1, *, now: datetime) -> None:
    """Store one service's share; the request is complete once every service answered."""
    repository = ExportRepository.from_session(session)
    request = await repository.get(share.request_id)
    if request is None or share.service in await repository.answered(share.request_id):
        return
    await repository.add_part(
        ExportPart(
            request_id=share.request_id, service=share.service, received_at=now, data=share.data
        )
    )
    if await repository.answered(share.request_id) >= set(ERASURE_PARTICIPANTS):
        await repository.complete(share.request_id, now)
