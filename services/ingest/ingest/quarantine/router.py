"""HTTP API of the quarantine and of the ignored inputs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from ingest.models import IgnoredInput, QuarantinedInput
from ingest.quarantine import service as quarantine_service
from ingest.quarantine.repository import QuarantineRepository
from ingest.quarantine.schemas import (
    IgnoredOut,
    IgnoredPage,
    QuarantinedOut,
    QuarantinePage,
    RetryOut,
)
from shared.api import SessionDep, require_roles
from shared.auth import Principal
from shared.errors import NotFound
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["quarantine"])

Reader = Annotated[Principal, Depends(require_roles("operator", "manager"))]
Fixer = Annotated[Principal, Depends(require_roles("operator", "manager"))]

_PROBLEMS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Missing role (problem+json)"},
    422: {"description": "Invalid parameters (problem+json)"},
}


def _out(item: QuarantinedInput) -> QuarantinedOut:
    return QuarantinedOut.model_validate(item, from_attributes=True)


@router.get(
    "/v1/quarantine",
    response_model=QuarantinePage,
    summary="Quarantined inputs, newest first, with their reason",
    responses=_PROBLEMS,
)
async def list_quarantine(
    session: SessionDep,
    _: Reader,
    status: Literal["open", "resolved", "ignored"] | None = "open",
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
    responses={**_PROBLEMS, 404: {"description": "Unknown id (problem+json)"}},
)
async def get_quarantined(quarantine_id: str, session: SessionDep, _: Reader) -> QuarantinedOut:
    item = await QuarantineRepository.from_session(session).get(quarantine_id)
    if item is None:
        raise NotFound("No quarantine entry has this id.")
    return _out(item)


@router.post(
    "/v1/quarantine/{quarantine_id}/retry",
    response_model=RetryOut,
    summary="Re-parse the stored input with today's parsers (or re-queue a Graph API fetch)",
    responses={
        **_PROBLEMS,
        404: {"description": "Unknown id (problem+json)"},
        409: {"description": "Not open, or its raw input was purged (problem+json)"},
    },
)
async def retry_quarantined(quarantine_id: str, session: SessionDep, _: Fixer) -> RetryOut:
    item = await QuarantineRepository.from_session(session).get(quarantine_id)
    if item is None:
        raise NotFound("No quarantine entry has this id.")
    return await quarantine_service.retry(session, item)


def _ignored(item: IgnoredInput) -> IgnoredOut:
    return IgnoredOut.model_validate(item, from_attributes=True)


@router.get(
    "/v1/ignored",
    response_model=IgnoredPage,
    summary="Inputs recorded as known non-leads (alerts, newsletters, bounces…), newest first",
    responses=_PROBLEMS,
)
async def list_ignored(
    session: SessionDep,
    _: Reader,
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
