"""Bodies of the SLA API."""

from __future__ import annotations

from datetime import date, datetime

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


class SalesSummary(BaseModel):
    """Sales of the leads received in the period (``lead.won.v2``'s price, when given)."""

    won: int = Field(description="Leads sold.")
    closed: int = Field(description="Leads closed: won, lost or disqualified.")
    conversion: float | None = Field(description="won / closed (None: none closed).")
    priced: int = Field(description="Sales whose price the seller gave.")
    revenue_eur: int = Field(description="Sum of the given sale prices, whole euros TTC.")
    average_sale_eur: float | None = Field(description="revenue_eur / priced.")


class SummaryGroup(BaseModel):
    key: str | None = Field(description="Value of the group_by dimension (None: not known yet).")
    leads: int
    sales: SalesSummary
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


class SeriesPoint(BaseModel):
    day: date = Field(description="Day of reception, Europe/Paris.")
    leads: int = Field(description="Leads received that day.")
    first_contact_count: int = Field(description="Of them, how many had the stage end.")
    first_contact_p50_minutes: int | None = Field(
        description="Median of the stage, whole business minutes (nearest rank)."
    )
    first_contact_p90_minutes: int | None
    breaches: int = Field(
        description="Stages with a target of these leads that ended late or run overdue."
    )
    won: int
    closed: int
    conversion: float | None = Field(description="won / closed (None: none closed).")
    revenue_eur: int


class Series(BaseModel):
    key: str | None = Field(description='Value of the `by` dimension ("all" without `by`).')
    points: list[SeriesPoint] = Field(description="One per day of the range, oldest first.")


class SeriesOut(BaseModel):
    period: Period
    by: str | None
    stage: str = Field(description="The stage measured as the first contact.")
    timezone: str
    filters: dict[str, str]
    generated_at: datetime
    series: list[Series]
