"""HTTP API of the operators' queue: list it, or claim the next lead from it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import TypeAdapter

from qualify.claims.schemas import ClaimOut
from qualify.deps import Operator, PolicyDep, RuntimeDep
from qualify.leads.state import OpenStatus
from qualify.models import ORDINARY_RANK
from qualify.problems import QueueEmpty
from qualify.queue.repository import QueueFilter, QueuePosition, QueueRepository, QueueRow
from qualify.queue.schemas import QueueItem, QueuePage
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.db.session import single_statement
from shared.errors import InvalidRequest
from shared.events.payloads import LeadSource
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/queue", tags=["queue"], responses=AUTH_PROBLEMS)

# A page's items validated in one call from the rows by name (half the CPU of a model built
# per row from a row's attributes).
_ITEMS = TypeAdapter(list[QueueItem])


@router.get(
    "",
    response_model=QueuePage,
    summary="Open, unclaimed leads whose time came: call-backs first, then earliest due",
    responses=problem_responses(InvalidRequest),
)
async def list_queue(
    _: Operator,  # first: a refused caller takes no connection
    runtime: RuntimeDep,
    source: LeadSource | None = None,
    site: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: OpenStatus | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> QueuePage:
    after = position_of(cursor) if cursor else None
    # The session opened here rather than by a generator dependency (its exit stack, a step of
    # the solve on every poll); the page is one statement (``single_statement``).
    async with single_statement(runtime.session_factory) as session:
        rows = await QueueRepository.from_session(session).page(
            filters=QueueFilter(source=source, site=site, status=status, overdue=overdue),
            now=runtime.clock(),
            after=after,
            limit=limit + 1,
        )
    items = _ITEMS.validate_python(rows[:limit])
    next_cursor = cursor_of(rows[limit - 1]) if len(rows) > limit else None
    return QueuePage(items=items, next_cursor=next_cursor)


@router.post(
    "/claim",
    response_model=ClaimOut,
    summary="Claim the first lead of the queue (never one another operator holds)",
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
    held = await QueueRepository.from_session(session).claim_next(
        filters=QueueFilter(source=source, site=site),
        now=now,
        operator_id=principal.token_id,
        operator_name=principal.name,
        expires_at=now + policy.lease,
    )
    if held is None:
        raise QueueEmpty("No lead is waiting for an operator.")
    return ClaimOut.held(held)


def cursor_of(row: QueueRow) -> str:
    # The rank rides in the key: "<rank>/<lead id>" (a key without it is an ordinary lead's).
    return encode_cursor(row["due_at"], f"{row['queue_rank']}/{row['lead_id']}")


def position_of(cursor: str) -> QueuePosition:
    due_at, key = decode_cursor(cursor)
    rank, _, lead_id = key.rpartition("/")
    return (int(rank) if rank.isdigit() else ORDINARY_RANK, due_at, lead_id)
