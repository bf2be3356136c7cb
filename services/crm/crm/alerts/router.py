"""GET /v1/alerts: the managers' alerts feed (role manager; admin may too)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, get_args

from fastapi import APIRouter, Query

from crm.alerts import service
from crm.alerts.repository import AlertsRepository, Position
from crm.alerts.schemas import AlertKind, AlertPage
from crm.deps import Manager, SettingsDep, SlaPolicyDep
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.errors import InvalidRequest
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=AUTH_PROBLEMS)

KINDS: tuple[AlertKind, ...] = get_args(AlertKind)


def _invalid(field: str, message: str, kind: str = "value_error") -> InvalidRequest:
    return InvalidRequest(
        f"Invalid parameter: {field}",
        errors=[{"field": field, "location": "query", "type": kind, "message": message}],
    )


def _position(cursor: str) -> Position:
    moment, key = decode_cursor(cursor)
    rank, _sep, rest = key.partition("|")
    if not rank.isdigit() or not rest or moment.tzinfo is None:
        raise _invalid("cursor", "unknown cursor", "invalid_cursor")
    return Position(moment, int(rank), rest)


@router.get(
    "",
    response_model=AlertPage,
    summary="Leads at risk of breaching their SLA and sellers' disabled webhooks",
    responses=problem_responses(InvalidRequest, s422="Unknown kind, bad limit or cursor"),
)
async def list_alerts(
    session: SessionDep,
    _: Manager,
    settings: SettingsDep,
    policy: SlaPolicyDep,
    now: NowDep,
    kind: Annotated[
        str | None,
        Query(max_length=64, description="Comma-separated: lead_at_risk, webhook_disabled."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> AlertPage:
    """Oldest first. A lead is listed while its stage is at risk (past the at-risk share of its
    target, not yet late: afterwards it is in ``/v1/sla/breaches``); a disabled webhook for
    ``CRM_ALERTS_WEBHOOK_WINDOW_DAYS``. The cursor continues after the last item seen."""
    kinds: set[AlertKind] = set()
    for name in (kind or ",".join(KINDS)).split(","):
        name = name.strip()
        matched = [value for value in KINDS if value == name]
        if not matched:
            raise _invalid("kind", f"among: {', '.join(KINDS)}")
        kinds.add(matched[0])
    after = _position(cursor) if cursor is not None else None
    items, last = await service.feed(
        AlertsRepository.from_session(session),
        policy,
        now=now,
        kinds=frozenset(kinds),
        webhook_window=timedelta(days=settings.alerts_webhook_window_days),
        after=after,
        limit=limit,
    )
    next_cursor = encode_cursor(last.at, f"{last.rank}|{last.key}") if last else None
    return AlertPage(items=items, next_cursor=next_cursor, generated_at=now)
