"""HTTP API of the managers' SLA figures: summary (with sales), daily series, funnel, breaches
(JSON or CSV)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from crm.deps import FactCopyDep, Manager, SettingsDep, SlaPolicyDep
from crm.sla import service
from crm.sla.repository import GROUP_COLUMNS, SERIES_TIMEZONE, Filters, SlaRepository
from crm.sla.schemas import BreachOut, BreachPage, FunnelOut, Period, SeriesOut, SummaryOut
from crm.sla.stages import STAGES, STAGES_BY_NAME
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.errors import InvalidRequest
from shared.events.payloads import RoutingPath
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/sla", tags=["sla"], responses=AUTH_PROBLEMS)

PARIS = ZoneInfo("Europe/Paris")
_EARLIEST, _LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)

_PROBLEMS = problem_responses(InvalidRequest, s422="Unbounded or inverted range, unknown group_by…")


def _invalid(field: str, message: str, kind: str = "value_error") -> InvalidRequest:
    return InvalidRequest(
        f"Invalid parameter: {field}",
        errors=[{"field": field, "location": "query", "type": kind, "message": message}],
    )


Dimension = Annotated[str | None, Query(min_length=1, max_length=64)]


def _instant(value: datetime | None, field: str) -> datetime:
    if value is None:
        raise _invalid(field, "required: the range must be bounded", "missing")
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)  # a local date or time is read in Europe/Paris
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise _invalid(field, "out of range") from exc
    if not _EARLIEST <= value <= _LATEST:
        raise _invalid(field, "must be between 2000 and 2100")
    return value


async def filters_of(
    settings: SettingsDep,
    start: Annotated[
        datetime | None,
        Query(alias="from", description="Leads received from (ISO 8601; local Paris if naive)."),
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="Leads received before (ISO 8601).")
    ] = None,
    source: Dimension = None,
    site: Dimension = None,
    seller: Dimension = None,
    operator: Dimension = None,
    path: Annotated[
        RoutingPath | None,
        Query(description="qualify (operators) or direct (routing policy at receipt)."),
    ] = None,
) -> Filters:
    begin, finish = _instant(start, "from"), _instant(end, "to")
    if finish <= begin:
        raise _invalid("to", "must be after from (inverted or empty range)")
    max_days = settings.sla_max_range_days
    if finish - begin > timedelta(days=max_days):
        raise _invalid("to", f"the range may span at most {max_days} days")
    return Filters(begin, finish, source, site, seller, operator, path)


FiltersDep = Annotated[Filters, Depends(filters_of)]


@router.get(
    "/summary",
    response_model=SummaryOut,
    summary="Speed-to-lead per stage: counts, p50/p90/p95 in business minutes, breaches, at risk",
    responses=_PROBLEMS,
)
async def get_summary(
    session: SessionDep,
    _: Manager,
    filters: FiltersDep,
    policy: SlaPolicyDep,
    now: NowDep,
    facts: FactCopyDep,
    group_by: Annotated[
        str | None, Query(max_length=32, description="source, site, seller, operator or path")
    ] = None,
) -> SummaryOut:
    if group_by is not None and group_by not in GROUP_COLUMNS:
        raise _invalid("group_by", f"one of: {', '.join(GROUP_COLUMNS)}")
    groups = await service.summary(
        SlaRepository.from_session(session), policy, filters, group_by, now, facts
    )
    return SummaryOut(
        period=Period(start=filters.start, end=filters.end),
        group_by=group_by,
        filters=filters.dimensions,
        generated_at=now,
        groups=groups,
    )


@router.get(
    "/series",
    response_model=SeriesOut,
    summary="Daily series for charts: leads, first-contact p50/p90, breaches, conversion, revenue",
    responses=_PROBLEMS,
)
async def get_series(
    session: SessionDep,
    _: Manager,
    filters: FiltersDep,
    policy: SlaPolicyDep,
    now: NowDep,
    by: Annotated[
        str | None, Query(max_length=32, description="source, site, seller, operator or path")
    ] = None,
    stage: Annotated[
        str, Query(max_length=32, description="The stage charted as the first contact.")
    ] = "first_attempt",
) -> SeriesOut:
    """Leads are counted on the Europe/Paris day they were received (a cohort: that day's leads,
    their first contact, breaches and sales, whenever these happened)."""
    if by is not None and by not in GROUP_COLUMNS:
        raise _invalid("by", f"one of: {', '.join(GROUP_COLUMNS)}")
    if stage not in STAGES_BY_NAME:
        raise _invalid("stage", f"one of: {', '.join(STAGES_BY_NAME)}")
    series = await service.series(
        SlaRepository.from_session(session), policy, filters, by, STAGES_BY_NAME[stage], now
    )
    return SeriesOut(
        period=Period(start=filters.start, end=filters.end),
        by=by,
        stage=stage,
        timezone=SERIES_TIMEZONE,
        filters=filters.dimensions,
        generated_at=now,
        series=series,
    )


@router.get(
    "/funnel",
    response_model=FunnelOut,
    summary="Conversion from received to won, by source and site (or other dimensions)",
    responses=_PROBLEMS,
)
async def get_funnel(
    session: SessionDep,
    _: Manager,
    filters: FiltersDep,
    group_by: Annotated[
        str,
        Query(max_length=64, description="Comma-separated: source, site, seller, operator, path"),
    ] = "source,site",
) -> FunnelOut:
    names = [name.strip() for name in group_by.split(",") if name.strip()]
    unknown = [name for name in names if name not in GROUP_COLUMNS]
    if unknown or len(set(names)) != len(names):
        raise _invalid("group_by", f"distinct values among: {', '.join(GROUP_COLUMNS)}")
    rows = await service.funnel(SlaRepository.from_session(session), filters, names)
    return FunnelOut(
        period=Period(start=filters.start, end=filters.end),
        group_by=names,
        filters=filters.dimensions,
        rows=rows,
    )


_CSV_COLUMNS = tuple(BreachOut.model_fields)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formulas in spreadsheets


@router.get(
    "/breaches",
    response_model=BreachPage,
    summary="Breached leads with stage, target and lateness (JSON, or CSV)",
    responses={
        **_PROBLEMS,
        200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV when asked"},
    },
)
async def get_breaches(
    request: Request,
    session: SessionDep,
    _: Manager,
    filters: FiltersDep,
    policy: SlaPolicyDep,
    now: NowDep,
    stage: Annotated[str | None, Query(max_length=32, description="Only this stage")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Any:
    targeted = [item for item in STAGES if policy.target(item.name) is not None]
    if stage is not None:
        if stage not in {item.name for item in targeted}:
            raise _invalid("stage", f"one of: {', '.join(item.name for item in targeted)}")
        targeted = [item for item in targeted if item.name == stage]
    as_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    if not as_csv and limit > 1000:
        raise _invalid("limit", "at most 1000 in JSON (10000 in CSV)")
    after: tuple[datetime, str, int] | None = None
    if cursor is not None:
        moment, key = decode_cursor(cursor)
        lead_id, _sep, position = key.rpartition("|")
        if not lead_id or not position.isdigit() or moment.tzinfo is None:
            raise _invalid("cursor", "unknown cursor", "invalid_cursor")
        after = (moment, lead_id, int(position))
    repository = SlaRepository.from_session(session)
    found: list[tuple[datetime, str, int, Any]] = []
    for index, item in enumerate(STAGES):
        if item not in targeted:
            continue
        target = policy.target(item.name)
        assert target is not None
        rows = await repository.breaches(
            item,
            filters,
            target_s=target * 60,
            now=now,
            after=(after[0], after[1]) if after else None,
            inclusive=after is not None and index > after[2],
            limit=limit + 1,
        )
        found += [(row.received_at, row.lead_id, index, row) for row in rows]
    found.sort(key=lambda entry: entry[:3])
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last[0], f"{last[1]}|{last[2]}")
    calendars = await repository.calendars()
    items = [service.breach_out(entry[3], policy, calendars, now) for entry in page]
    if not as_csv:
        return BreachPage(items=items, next_cursor=next_cursor)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for item_out in items:
        values = item_out.model_dump()
        writer.writerow([_csv_cell(values[column]) for column in _CSV_COLUMNS])
    headers = {"Content-Disposition": 'attachment; filename="sla-breaches.csv"'}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
