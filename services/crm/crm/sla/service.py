"""The managers' figures, assembled from the repository's aggregates."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crm.sla.calendars import calendar_key
from crm.sla.percentiles import PERCENTILES, from_histogram
from crm.sla.repository import Breach, Filters, SlaRepository, StageHistogram
from crm.sla.schemas import BreachOut, FunnelRow, StageSummary, SummaryGroup
from crm.sla.stages import FUNNEL, STAGES, STAGES_BY_NAME, SlaPolicy
from shared.business_time import BusinessCalendar


async def summary(
    repository: SlaRepository,
    policy: SlaPolicy,
    filters: Filters,
    group_by: str | None,
    now: datetime,
) -> list[SummaryGroup]:
    targets_s = {
        stage.name: math.floor(target * 60)
        for stage in STAGES
        if (target := policy.target(stage.name)) is not None
    }
    if repository.on_postgres:
        rows = await repository.stage_summaries_postgres(filters, group_by, targets_s, now)
    else:
        rows = await _summaries_from_histograms(repository, filters, group_by, targets_s, now)
    groups: list[SummaryGroup] = []
    for key in sorted(rows, key=lambda value: (value is None, value or "")):
        row = rows[key]
        stages: list[StageSummary] = []
        for stage in STAGES:
            target = policy.target(stage.name)
            ended = int(row[f"{stage.name}__count"])
            percentiles: list[int | None] = list(row[f"{stage.name}__percentiles"] or [])
            percentiles = percentiles if ended else [None] * len(PERCENTILES)
            wall: list[int | None] = list(row[f"{stage.name}__wall_percentiles"] or [])
            wall = wall if ended else [None] * len(PERCENTILES)
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
        groups.append(SummaryGroup(key=key, leads=int(row["leads"]), stages=stages))
    return groups


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
