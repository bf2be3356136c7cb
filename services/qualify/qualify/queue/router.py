"""HTTP API of the operators' queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from qualify.queue.handlers import WAITING
from qualify.queue.repository import QueueRepository
from qualify.queue.schemas import QueueItem, QueuePage
from shared.api import SessionDep, require_roles
from shared.auth import Principal
from shared.events.payloads import LeadSource
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/queue", tags=["queue"])

Operator = Annotated[Principal, Depends(require_roles("operator", "manager"))]


@router.get(
    "",
    response_model=QueuePage,
    summary="Leads waiting for an operator, oldest first",
    responses={
        401: {"description": "No valid token (problem+json)"},
        403: {"description": "Missing role (problem+json)"},
        422: {"description": "Invalid parameter (problem+json)"},
    },
)
async def list_queue(
    session: SessionDep,
    _: Operator,
    source: LeadSource | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> QueuePage:
    after = decode_cursor(cursor) if cursor else None
    rows = await QueueRepository.from_session(session).page(
        status=WAITING, source=source, after=after, limit=limit + 1
    )
    items = [QueueItem.model_validate(row, from_attributes=True) for row in rows[:limit]]
    next_cursor = (
        encode_cursor(rows[limit - 1].received_at, rows[limit - 1].lead_id)
        if len(rows) > limit
        else None
    )
    return QueuePage(items=items, next_cursor=next_cursor)
