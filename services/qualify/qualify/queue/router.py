"""HTTP API of the operators' queue: list it, or claim the next lead from it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import TypeAdapter
from pydantic_core import to_json
from starlette.responses import Response

from qualify.claims.schemas import ClaimOut
from qualify.deps import Operator, PolicyDep, RuntimeDep
from qualify.leads.state import OpenStatus
from qualify.models import ORDINARY_RANK
from qualify.problems import QueueEmpty
from qualify.queue.repository import (
    QueueFilter,
    QueuePageRows,
    QueuePosition,
    QueueRepository,
    read_page,
)
from qualify.queue.schemas import QueueItem, QueuePage, QueueQuery
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses, runtime_of
from shared.auth import Principal
from shared.direct import query_model
from shared.errors import InvalidRequest
from shared.events.payloads import LeadSource
from shared.pagination import decode_cursor, encode_cursor
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/queue", tags=["queue"], responses=AUTH_PROBLEMS)

# The page's items validated in one call from the rows by name (the FastAPI route; the direct
# route encodes the rows as they are: the same bytes, see ``list_queue_directly``).
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
    # Operators' polls are answered by ``list_queue_directly``; this route documents them.
    query = QueueQuery.model_construct(  # validated by FastAPI
        source=source, site=site, status=status, overdue=overdue, limit=limit, cursor=cursor
    )
    page = await _read(runtime, query)
    return QueuePage(items=_ITEMS.validate_python(page.items), next_cursor=_next_cursor(page))


async def list_queue_directly(request: Request, _: Principal) -> Response:
    """``GET /v1/queue`` answered by the request middleware (``shared.direct``, registered by
    ``qualify.app``): what ``list_queue`` answers, without FastAPI's per-request machinery. The
    caller has passed ``OPERATE`` already; the query string is validated as FastAPI validates
    ``list_queue``'s parameters (``QueueQuery``, checked at start-up), with the same 422.

    The rows are encoded as they are, without a ``QueueItem`` each: their values are the
    database's (strings, integers, booleans, aware datetimes), which pydantic-core encodes as the
    model's fields would, in the model's field order (tests compare the bytes)."""
    page = await _read(runtime_of(request), query_model(request, QueueQuery))
    body = to_json({"items": page.items, "next_cursor": _next_cursor(page)})
    return Response(body, media_type="application/json")


async def _read(runtime: Runtime[Any], query: QueueQuery) -> QueuePageRows:
    return await read_page(
        runtime.engine,
        filters=QueueFilter(
            source=query.source, site=query.site, status=query.status, overdue=query.overdue
        ),
        now=runtime.clock(),
        after=position_of(query.cursor) if query.cursor else None,
        limit=query.limit,
    )


def _next_cursor(page: QueuePageRows) -> str | None:
    return None if page.next_after is None else cursor_of(page.next_after)


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


def cursor_of(position: QueuePosition) -> str:
    # The rank rides in the key: "<rank>/<lead id>" (a key without it is an ordinary lead's).
    rank, due_at, lead_id = position
    return encode_cursor(due_at, f"{rank}/{lead_id}")


def position_of(cursor: str) -> QueuePosition:
    due_at, key = decode_cursor(cursor)
    rank, _, lead_id = key.rpartition("/")
    return (int(rank) if rank.isdigit() else ORDINARY_RANK, due_at, lead_id)
