"""The managers' figures, assembled from the repository's aggregates."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from crm.sla.calendars import calendar_key
from crm.sla.columnar_summary import NotExact, summary_rows
from crm.sla.fact_copy.copy import SlaFactCopy
from crm.sla.percentiles import PERCENTILES, from_histogram
from crm.sla.repository import (
    SERIES_PERCENTILES,
    SERIES_TIMEZONE,
    Breach,
    Filters,
    Outcomes,
    SlaRepository,
    StageHistogram,
)
from crm.sla.schemas import (
    BreachOut,
    FunnelRow,
    SalesSummary,
    Series,
    SeriesPoint,
    StageSummary,
    SummaryGroup,
)
from crm.sla.stages import FUNNEL, STAGES, STAGES_BY_NAME, SlaPolicy, Stage
from shared.business_time import BusinessCalendar

SERIES_ZONE = ZoneInfo(SERIES_TIMEZONE)


async def summary(
    repository: SlaRepository,
    policy: SlaPolicy,
    filters: Filters,
    group_by: str | None,
    now: datetime,
    facts: SlaFactCopy | None = None,
) -> list[SummaryGroup]:
    """The figures per group; from the columnar copy of the facts when this process has one
    (PostgreSQL), else from the database's aggregates."""
    targets_s = policy.targets_seconds()
    rows: dict[str | None, dict[str, Any]] | None = None
    if facts is not None:
        try:
            rows = await facts.read(
                partial(
                    summary_rows, filters=filters, group_by=group_by, targets_s=targets_s, now=now
                )
            )
        except NotExact:
            rows = None  # the database's aggregates below give the exact figures
    if rows is not None:
        outcomes = {key: Outcomes.of_row(row) for key, row in rows.items()}
    elif repository.on_postgres:
        rows = await repository.stage_summaries_postgres(filters, group_by, targets_s, now)
        outcomes = {key: Outcomes.of_row(row) for key, row in rows.items()}
    else:
        outcomes = await repository.outcomes(filters, group_by)
        rows = await _summaries_from_histograms(repository, filters, group_by, targets_s, now)
    groups: list[SummaryGroup] = []
    for key in sorted(rows, key=lambda value: (value is None, value or "")):
        row = rows[key]
        stages: list[StageSummary] = []
        for stage in STAGES:
            target = policy.target(stage.name)
            ended = int(row[f"{stage.name}__count"])
            # None when no value (a stage whose wall duration is missing: none on their own).
            percentiles = _ranked(row[f"{stage.name}__percentiles"] if ended else None)
            wall = _ranked(row[f"{stage.name}__wall_percentiles"] if ended else None)
            late = int(row.get(f"{stage.name}__late") or 0)
            overdue = int(row.get(f"{stage.name}__overdue") or 0)
            at_risk = int(row.get(f"{stage.name}__at_risk") or 0)
            population = ended + overdue
            stages.append(
                StageSummary(
                    stage=stage.name,
                    description=stage.description,
                    clock=stage.clock,
                    target_minutes=target,
                    count=ended,
                    p50_minutes=percentiles[0],
                    p90_minutes=percentiles[1],
                    p95_minutes=percentiles[2],
                    wall_p50_minutes=wall[0],
                    wall_p90_minutes=wall[1],
                    wall_p95_minutes=wall[2],
                    late=late,
                    overdue=overdue,
                    breached=late + overdue,
                    breach_rate=(
                        round((late + overdue) / population, 4)
                        if target is not None and population
                        else None
                    ),
                    at_risk=at_risk,
                )
            )
        groups.append(
            SummaryGroup(
                key=key,
                leads=int(row["leads"]),
                sales=sales_summary(outcomes.get(key, Outcomes(0, 0, 0, 0))),
                stages=stages,
            )
        )
    return groups


def _ranked(values: Sequence[int] | None) -> list[int | None]:
    return list(values) if values else [None] * len(PERCENTILES)


def sales_summary(outcomes: Outcomes) -> SalesSummary:
    return SalesSummary(
        won=outcomes.won,
        closed=outcomes.closed,
        conversion=_ratio(outcomes.won, outcomes.closed),
        priced=outcomes.priced,
        revenue_eur=outcomes.revenue_eur,
        average_sale_eur=(
            round(outcomes.revenue_eur / outcomes.priced, 2) if outcomes.priced else None
        ),
    )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def days_of(start: datetime, end: datetime) -> list[date]:
    """The Europe/Paris days that ``[start, end)`` touches."""
    first = start.astimezone(SERIES_ZONE).date()
    last = (end - timedelta(microseconds=1)).astimezone(SERIES_ZONE).date()
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


async def series(
    repository: SlaRepository,
    policy: SlaPolicy,
    filters: Filters,
    by: str | None,
    stage: Stage,
    now: datetime,
) -> list[Series]:
    """Per key of ``by`` (or "all"), one point per local day: leads received, the stage's
    p50/p90, breaches, sales, conversion and revenue of those leads."""
    targeted = [
        (item, math.floor(target * 60))
        for item in STAGES
        if (target := policy.target(item.name)) is not None
    ]
    totals = await repository.daily_totals(filters, by, targeted, stage, now)
    if not repository.on_postgres:
        # Portable path: one GROUP BY on whole minutes per day and group, then nearest ranks.
        histograms = await repository.daily_histograms(stage, filters, by)
        for row in totals:
            histogram = histograms.get((str(row["day"]), row["g"]), {})
            row["stage_count"] = sum(histogram.values())
            row["stage_percentiles"] = from_histogram(histogram, SERIES_PERCENTILES)
    rows = {(str(row["day"]), row["g"]): row for row in totals}
    keys = sorted({key for _, key in rows}, key=lambda value: (value is None, value or ""))
    result: list[Series] = []
    for key in keys:
        points: list[SeriesPoint] = []
        for day in days_of(filters.start, filters.end):
            row = rows.get((day.isoformat(), key), {})
            count = int(row.get("stage_count") or 0)
            percentiles: list[int | None] = list(row.get("stage_percentiles") or [])
            percentiles = percentiles if count else [None] * len(SERIES_PERCENTILES)
            won, closed = int(row.get("won") or 0), int(row.get("closed") or 0)
            points.append(
                SeriesPoint(
                    day=day,
                    leads=int(row.get("leads") or 0),
                    first_contact_count=count,
                    first_contact_p50_minutes=percentiles[0],
                    first_contact_p90_minutes=percentiles[1],
                    breaches=int(row.get("breaches") or 0),
                    won=won,
                    closed=closed,
                    conversion=_ratio(won, closed),
                    revenue_eur=int(row.get("revenue") or 0),
                )
            )
        result.append(Series(key=key, points=points))
    return result


async def _summaries_from_histograms(
    repository: SlaRepository,
    filters: Filters,
    group_by: str | None,
    targets_s: dict[str, int],
    now: datetime,
) -> dict[str | None, dict[str, Any]]:
    """Portable path (SQLite): one GROUP BY per stage on whole minutes, then nearest ranks."""
    rows: dict[str | None, dict[str, Any]] = {
        key: dict(counts)
        for key, counts in (await repository.open_counts(filters, group_by, now)).items()
    }
    for stage in STAGES:
        histograms = await repository.stage_histograms(
            stage, filters, group_by, targets_s.get(stage.name)
        )
        wall_histograms = await repository.stage_histograms(
            stage, filters, group_by, None, wall=True
        )
        for key, row in rows.items():
            histogram = histograms.get(key, StageHistogram({}, 0))
            row[f"{stage.name}__count"] = sum(histogram.minutes.values())
            row[f"{stage.name}__percentiles"] = from_histogram(histogram.minutes)
            row[f"{stage.name}__wall_percentiles"] = from_histogram(
                wall_histograms.get(key, StageHistogram({}, 0)).minutes
            )
            if stage.name in targets_s:
                row[f"{stage.name}__late"] = histogram.late
            else:
                row.pop(f"{stage.name}__overdue", None)
                row.pop(f"{stage.name}__at_risk", None)
    return rows


async def funnel(
    repository: SlaRepository, filters: Filters, group_by: Sequence[str]
) -> list[FunnelRow]:
    rows = []
    for row in await repository.funnel(filters, group_by):
        counts: dict[str, int] = {milestone: int(row[milestone]) for milestone in FUNNEL}
        received = counts["received"]
        rows.append(
            FunnelRow(
                keys={name: row[name] for name in group_by},
                counts=counts,
                conversion={
                    milestone: round(count / received, 4) if received else None
                    for milestone, count in counts.items()
                },
            )
        )
    return rows


def breach_out(
    breach: Breach, policy: SlaPolicy, calendars: Mapping[str, BusinessCalendar], now: datetime
) -> BreachOut:
    """``calendars``: the known sites' calendars by key (``SlaRepository.calendars``)."""
    stage = STAGES_BY_NAME[breach.stage]
    target = policy.target(stage.name)
    assert target is not None
    if breach.business_s is not None:
        taken = breach.business_s / 60
        wall = (breach.wall_s or 0) / 60
        state = "late"
    else:
        key = calendar_key(breach.site, breach.channel)
        calendar = policy.calendar(stage.clock, calendars.get(key) if key else None)
        taken = calendar.business_minutes_between(breach.started_at, now)
        wall = max((now - breach.started_at).total_seconds(), 0.0) / 60
        state = "overdue"
    return BreachOut(
        lead_id=breach.lead_id,
        stage=breach.stage,
        state=state,
        target_minutes=target,
        business_minutes=round(taken, 2),
        wall_minutes=round(wall, 2),
        lateness_minutes=round(max(taken - target, 0.0), 2),
        received_at=breach.received_at,
        started_at=breach.started_at,
        ended_at=breach.ended_at,
        due_at=breach.due_at,
        source=breach.source,
        site=breach.site,
        seller_id=breach.seller_id,
        operator_id=breach.operator_id,
    )
