"""Erasure requests: record, publish to every service, track their answers to completion."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Row, delete
from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.repository import ClientRepository
from crm.models import Client, TimelineEntry, infra
from crm.privacy.due_dates import one_month_after, status_of
from crm.privacy.exports import forget_exports
from crm.privacy.repository import ErasureRepository
from crm.privacy.schemas import ErasureRequestOut, ServiceProgress
from shared.clock import utcnow
from shared.errors import NotFound
from shared.events.privacy import ErasureCompletedV1, ErasureRequestedV1
from shared.outbox import stage
from shared.privacy import ERASURE_PARTICIPANTS, ERASURE_REQUESTED, contact_hash

EVENT_SOURCE = "/vo-leads/crm"


async def request_erasure(
    session: AsyncSession,
    *,
    client_id: str,
    reason: str,
    requested_by: str | None,
    hmac_key: bytes,
) -> tuple[Row[Any], bool]:
    """The request for this client (created, and published, the first time)."""
    repository = ErasureRepository.from_session(session)
    existing = await repository.by_client(client_id)
    if existing is not None:
        return existing, False
    client = await ClientRepository.from_session(session).get_with_timeline(client_id)
    if client is None:
        raise NotFound("No client has this id.")
    now = utcnow()
    request_id = str(uuid.uuid4())
    lead_ids = sorted({entry.lead_id for entry in client.timeline})
    hashes = sorted(contact_hash(key, hmac_key) for key in (client.phone, client.email) if key)
    await repository.add(
        id=request_id,
        client_id=client_id,
        reason=reason,
        requested_by=requested_by,
        requested_at=now,
        due_at=one_month_after(now),
        completed_at=None,
        lead_ids=lead_ids,
        contact_hashes=hashes,
    )
    event = ErasureRequestedV1(
        request_id=request_id,
        client_id=client_id,
        lead_ids=lead_ids,
        contact_hashes=hashes,
        requested_at=now,
    )
    await stage(
        session,
        infra.outbox_event,
        source=EVENT_SOURCE,
        event_type=ERASURE_REQUESTED,
        subject=client_id,
        payload=event,
    )
    created = await repository.get(request_id)
    assert created is not None
    return created, True


async def describe(session: AsyncSession, request: Row[Any], *, now: datetime) -> ErasureRequestOut:
    progress = {
        row.service: ServiceProgress(completed_at=row.completed_at, erased=row.erased)
        for row in await ErasureRepository.from_session(session).progress(request.id)
    }
    status, flagged, overdue = status_of(
        now=now, due_at=request.due_at, completed_at=request.completed_at
    )
    return ErasureRequestOut(
        id=request.id,
        client_id=request.client_id,
        reason=request.reason,
        requested_at=request.requested_at,
        due_at=request.due_at,
        completed_at=request.completed_at,
        status=status,  # type: ignore[arg-type]
        flagged=flagged,
        overdue=overdue,
        lead_count=len(request.lead_ids),
        services={service: progress.get(service) for service in ERASURE_PARTICIPANTS},
    )


async def erase_client_data(session: AsyncSession, request: ErasureRequestedV1) -> dict[str, int]:
    """crm's own share: the client and the timeline of its leads."""
    timeline = await _delete(
        session, delete(TimelineEntry).where(TimelineEntry.lead_id.in_(request.lead_ids))
    )
    clients = await _delete(session, delete(Client).where(Client.id == request.client_id))
    exports = await forget_exports(session, client_id=request.client_id, before=None)
    return {"timeline_entry": timeline, "client": clients, "export_request": exports}


async def _delete(session: AsyncSession, statement: Delete) -> int:
    result = cast(CursorResult[Any], await session.execute(statement))
    return int(result.rowcount or 0)


async def record_completion(session: AsyncSession, answer: ErasureCompletedV1) -> bool:
    """Store one service's answer; True when this answer completed the request."""
    repository = ErasureRepository.from_session(session)
    request = await repository.get(answer.request_id)
    if request is None:
        return False  # a request of another crm database (tests) or already purged
    answered = {row.service for row in await repository.progress(answer.request_id)}
    if answer.service in answered:
        return False
    await repository.add_progress(
        request_id=answer.request_id,
        service=answer.service,
        completed_at=answer.completed_at,
        erased=answer.erased,
        rows_total=sum(answer.erased.values()),
    )
    if answered | {answer.service} >= set(ERASURE_PARTICIPANTS) and request.completed_at is None:
        await repository.complete(answer.request_id, utcnow())
        return True
    return False


async def leads_of(session: AsyncSession, request_id: str) -> list[str]:
    request = await ErasureRepository.from_session(session).get(request_id)
    return list(request.lead_ids) if request is not None else []
