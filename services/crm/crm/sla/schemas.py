"""Bodies of the SLA API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Period(BaseModel):
    start: datetime = Field(description="Leads received at or after this instant (UTC).")
    end: datetime = Field(description="Leads received before this instant (UTC).")


class StageSummary(BaseModel):
    stage: str
    description: str
    clock: str = Field(description="call_centre or site: whose opening hours count.")
    target_minutes: float | None = Field(description="Target in business minutes (None: none).")
    count: int = Field(description="Stages that ended (the percentiles' population).")
    p50_minutes: int | None = Field(description="Median, whole business minutes (nearest rank).")
    p90_minutes: int | None
    p95_minutes: int | None
    wall_p50_minutes: int | None = Field(
        description="Median of the wall-clock durations (real elapsed minutes, rounded up)."
    )
    wall_p90_minutes: int | None
    wall_p95_minutes: int | None
    late: int = Field(description="Ended after the target.")
    overdue: int = Field(description="Still running past the target (lead not closed).")
    breached: int = Field(description="late + overdue.")
    breach_rate: float | None = Field(description="breached / (count + overdue).")
    at_risk: int = Field(description="Running, past the at-risk share of the target, not late.")


class SummaryGroup(BaseModel):
    key: str | None = Field(description="Value of the group_by dimension (None: not known yet).")
    leads: int
    stages: list[StageSummary]


class SummaryOut(BaseModel):
    period: Period
    group_by: str | None
    filters: dict[str, str]
    generated_at: datetime
    groups: list[SummaryGroup]


class FunnelRow(BaseModel):
    keys: dict[str, str | None]
    counts: dict[str, int] = Field(description="Leads that reached each milestone.")
    conversion: dict[str, float | None] = Field(description="counts / received.")


class FunnelOut(BaseModel):
    period: Period
    group_by: list[str]
    filters: dict[str, str]
    rows: list[FunnelRow]


class BreachOut(BaseModel):
    lead_id: str
    stage: str
    state: str = Field(description="late (ended after the target) or overdue (still running).")
    target_minutes: float
    business_minutes: float = Field(description="Business minutes the stage took or has taken.")
    wall_minutes: float = Field(description="Wall-clock minutes the stage took or has taken.")
    lateness_minutes: float = Field(description="Business minutes past the target.")
    received_at: datetime
    started_at: datetime
    ended_at: datetime | None
    due_at: datetime | None
    source: str | None
    site: str | None
    seller_id: str | None
    operator_id: str | None


class BreachPage(BaseModel):
    items: list[BreachOut]
    next_cursor: str | None
