"""HTTP API of the operators' queue: list it, or claim the next lead from it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from qualify.claims.schemas import ClaimOut
from qualify.deps import Operator, PolicyDep
from qualify.leads.state import OpenStatus
from qualify.models import QueuedLead
from qualify.problems import QueueEmpty
from qualify.queue.repository import QueueFilter, QueueRepository
from qualify.queue.schemas import QueueItem, QueuePage
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.errors import InvalidRequest
from shared.events.payloads import LeadSource
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/queue", tags=["queue"], responses=AUTH_PROBLEMS)


@router.get(
    "",
    response_model=QueuePage,
    summary="Open, unclaimed leads, earliest first-contact deadline first",
    responses=problem_responses(InvalidRequest),
)
async def list_queue(
    session: SessionDep,
    _: Operator,
    now: NowDep,
    source: LeadSource | None = None,
    site: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: OpenStatus | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> QueuePage:
    after = decode_cursor(cursor) if cursor else None
    rows = await QueueRepository.from_session(session).page(
        filters=QueueFilter(source=source, site=site, status=status, overdue=overdue),
        now=now,
        after=after,
        limit=limit + 1,
    )
    items = [queue_item(row, now) for row in rows[:limit]]
    next_cursor = (
        encode_cursor(rows[limit - 1].due_at, rows[limit - 1].lead_id)
        if len(rows) > limit
        else None
    )
    return QueuePage(items=items, next_cursor=next_cursor)


@router.post(
    "/claim",
    response_model=ClaimOut,
    summary="Claim the lead with the earliest deadline (never one another operator holds)",
    responses=problem_responses(QueueEmpty, InvalidRequest),
)
async def claim_next(
    session: SessionDep,
    principal: Operator,
    policy: PolicyDep,
    now: NowDep,
    source: LeadSource | None = None,
    site: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> ClaimOut:
    lead = await QueueRepository.from_session(session).claim_next(
        filters=QueueFilter(source=source, site=site),
        now=now,
        operator_id=principal.token_id,
        operator_name=principal.name,
        expires_at=now + policy.lease,
    )
    if lead is None:
        raise QueueEmpty("No lead is waiting for an operator.")
    return ClaimOut.of(lead)


def queue_item(row: QueuedLead, now: datetime) -> QueueItem:
    return QueueItem(
        lead_id=row.lead_id,
        status=row.status,
        kind=row.kind,
        source=row.source,
        site=row.site,
        received_at=row.received_at,
        due_at=row.due_at,
        overdue=row.due_at < now,
        attempt_count=row.attempt_count,
        unread_replies=row.unread_replies,
        full_name=row.full_name,
        phone=row.phone,
        email=row.email,
        ad_ref=row.ad_ref,
    )
