"""HTTP API of the quarantine and of the ignored inputs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ingest.deps import Fixer, Reader, SettingsDep
from ingest.models import IgnoredInput, QuarantinedInput
from ingest.quarantine import service as quarantine_service
from ingest.quarantine.repository import QuarantineRepository
from ingest.quarantine.schemas import (
    IgnoredOut,
    IgnoredPage,
    QuarantinedOut,
    QuarantinePage,
    QuarantineStatus,
    RetryOut,
)
from shared.api import AUTH_PROBLEMS, NowDep, OutboxDep, SessionDep, problem_responses
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["quarantine"], responses=AUTH_PROBLEMS)

_INVALID = problem_responses(InvalidRequest, s422="Invalid parameters")


def _out(item: QuarantinedInput) -> QuarantinedOut:
    return QuarantinedOut.model_validate(item, from_attributes=True)


@router.get(
    "/v1/quarantine",
    response_model=QuarantinePage,
    summary="Quarantined inputs, newest first, with their reason",
    responses=_INVALID,
)
async def list_quarantine(
    _: Reader,
    session: SessionDep,
    status: QuarantineStatus | None = "open",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> QuarantinePage:
    after = decode_cursor(cursor) if cursor else None
    items = await QuarantineRepository.from_session(session).page(
        status=status, after=after, limit=limit + 1
    )
    more = len(items) > limit
    items = items[:limit]
    return QuarantinePage(
        items=[_out(item) for item in items],
        next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None,
    )


@router.get(
    "/v1/quarantine/{quarantine_id}",
    response_model=QuarantinedOut,
    summary="One quarantined input",
    responses=problem_responses(NotFound, s404="Unknown id"),
)
async def get_quarantined(quarantine_id: str, _: Reader, session: SessionDep) -> QuarantinedOut:
    item = await QuarantineRepository.from_session(session).get(quarantine_id)
    if item is None:
        raise NotFound("No quarantine entry has this id.")
    return _out(item)


@router.post(
    "/v1/quarantine/{quarantine_id}/retry",
    response_model=RetryOut,
    summary="Re-parse the stored input with today's parsers (or re-queue a Graph API fetch)",
    responses=problem_responses(
        NotFound, Conflict, s404="Unknown id", s409="Not open, or its raw input was purged"
    ),
)
async def retry_quarantined(
    quarantine_id: str,
    _: Fixer,
    session: SessionDep,
    settings: SettingsDep,
    outbox: OutboxDep,
    now: NowDep,
) -> RetryOut:
    item = await QuarantineRepository.from_session(session).get(quarantine_id)
    if item is None:
        raise NotFound("No quarantine entry has this id.")
    return await quarantine_service.retry(
        session, item, limits=settings.mime_limits, outbox=outbox, now=now
    )


def _ignored(item: IgnoredInput) -> IgnoredOut:
    return IgnoredOut.model_validate(item, from_attributes=True)


@router.get(
    "/v1/ignored",
    response_model=IgnoredPage,
    summary="Inputs recorded as known non-leads (alerts, newsletters, bounces…), newest first",
    responses=_INVALID,
)
async def list_ignored(
    _: Reader,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> IgnoredPage:
    after = decode_cursor(cursor) if cursor else None
    items = await QuarantineRepository.from_session(session).ignored_page(
        after=after, limit=limit + 1
    )
    more = len(items) > limit
    items = items[:limit]
    return IgnoredPage(
        items=[_ignored(item) for item in items],
        next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None,
    )
