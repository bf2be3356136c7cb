"""Milestones of a lead, the SLA stages between them, and the policy that measures them.

A *milestone* is the first time something happened to a lead (received, first operator attempt,
reached, qualified, offered to a seller, accepted, first seller contact, appointment, won, lost,
disqualified). A *stage* runs from one milestone to another and is measured on one clock: the
operators' call-centre calendar, or the calendar of the lead's site (its pool's for a full-web
lead), as dispatch publishes it. Durations are kept in wall
seconds and in business seconds (opening time only: breaks, closures, French public holidays,
Europe/Paris, DST-correct through ``shared.business_time``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal, get_args

from crm.settings import CrmSettings
from shared.business_time import BusinessCalendar

Clock = Literal["call_centre", "site"]

Milestone = Literal[
    "received",
    "first_attempt",
    "reached",
    "qualified",
    "disqualified",
    "offered",
    "accepted",
    "seller_contact",
    "appointment",
    "won",
    "lost",
]
"""Each milestone is a ``<name>_at`` column of ``sla_fact``: the earliest instant it happened."""

MILESTONES: tuple[Milestone, ...] = get_args(Milestone)

OUTCOMES: tuple[Milestone, ...] = ("won", "lost", "disqualified")
"""The milestones that close a lead, by precedence: its outcome is the first of them it has."""

FUNNEL: tuple[Milestone, ...] = (
    *(milestone for milestone in MILESTONES if milestone not in OUTCOMES),
    *OUTCOMES,
)
"""The milestones in the order of the funnel: the way to a sale, then how leads end."""


def milestone_column(milestone: Milestone) -> str:
    return f"{milestone}_at"


OPERATOR_STAGES: frozenset[str] = frozenset({"first_attempt", "reached"})
"""Stages only the call centre's operators run: a lead routed ``direct`` (qualified by qualify's
routing policy at receipt) never enters them, so they have no deadline there."""


@dataclass(frozen=True)
class Stage:
    name: str
    start: Milestone
    end: Milestone
    clock: Clock
    description: str

    @property
    def start_column(self) -> str:
        return milestone_column(self.start)

    @property
    def end_column(self) -> str:
        return milestone_column(self.end)

    @property
    def business_column(self) -> str:
        return f"{self.name}_business_s"

    @property
    def wall_column(self) -> str:
        return f"{self.name}_wall_s"

    @property
    def due_column(self) -> str:
        return f"{self.name}_due_at"

    @property
    def risk_column(self) -> str:
        return f"{self.name}_risk_at"


STAGES: tuple[Stage, ...] = (
    Stage("first_attempt", "received", "first_attempt", "call_centre", "received → first call"),
    Stage("reached", "received", "reached", "call_centre", "received → prospect reached"),
    Stage("qualified", "received", "qualified", "call_centre", "received → qualified"),
    Stage("offered", "qualified", "offered", "site", "qualified → offered to a seller"),
    Stage("accepted", "offered", "accepted", "site", "offered → accepted by the seller"),
    Stage("seller_contact", "accepted", "seller_contact", "site", "accepted → seller's contact"),
    Stage("appointment", "received", "appointment", "site", "received → appointment"),
    Stage("won", "received", "won", "site", "received → sale"),
)
STAGES_BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}


@dataclass(frozen=True)
class StageMeasure:
    """One stage of one lead: durations once it ended, deadline and warning while it runs."""

    business_s: int | None
    wall_s: int | None
    due_at: datetime | None
    risk_at: datetime | None


@dataclass(frozen=True)
class SlaPolicy:
    """The call centre's calendar, targets and at-risk share (one per process, cached). A site's
    calendar is not the policy's: it comes from dispatch's ``site.calendar-changed.v1`` events
    (``crm/sla/calendars.py``) and is passed to ``measure``; while a site's calendar is unknown
    its stages are measured on the call centre's hours (the documented default)."""

    call_centre: BusinessCalendar
    targets_minutes: Mapping[str, float]
    at_risk_ratio: float

    def calendar(self, clock: Clock, site_calendar: BusinessCalendar | None) -> BusinessCalendar:
        if clock == "call_centre" or site_calendar is None:
            return self.call_centre
        return site_calendar

    def target(self, stage: str) -> float | None:
        return self.targets_minutes.get(stage)

    def targets_seconds(self) -> dict[str, int]:
        """The stages with a target, in ``STAGES`` order, and their targets in whole business
        seconds (what "late" compares durations with)."""
        return {
            stage.name: math.floor(target * 60)
            for stage in STAGES
            if (target := self.target(stage.name)) is not None
        }

    def measure(
        self,
        stage: Stage,
        start: datetime | None,
        end: datetime | None,
        site_calendar: BusinessCalendar | None,
    ) -> StageMeasure:
        calendar = self.calendar(stage.clock, site_calendar)
        key = (id(calendar), self.target(stage.name), self.at_risk_ratio, start, end)
        cached = _MEASURES.get(key)
        if cached is not None:
            return cached[1]
        measure = _measure(calendar, key[1], self.at_risk_ratio, start, end)
        if len(_MEASURES) >= _MEASURES_SIZE:
            del _MEASURES[next(iter(_MEASURES))]  # the oldest
        _MEASURES[key] = (calendar, measure)
        return measure


# Stage measures cached by their whole input: every event of a lead measures all its stages
# again, and most of them (their instants unchanged) come out the same. The calendar is keyed by
# identity (calendars are built once per spec: ``crm.sla.calendars``), not by its hash, which
# sorts its weekly hours each time; the entry keeps its calendar, so the id is not reused.
_MEASURES_SIZE = 4096
_MEASURES: dict[
    tuple[int, float | None, float, datetime | None, datetime | None],
    tuple[BusinessCalendar, StageMeasure],
] = {}


def _measure(
    calendar: BusinessCalendar,
    target: float | None,
    at_risk_ratio: float,
    start: datetime | None,
    end: datetime | None,
) -> StageMeasure:
    """A stage's measure (cached by ``SlaPolicy.measure``)."""
    business_s = wall_s = None
    if start is not None and end is not None:
        # Events may arrive with small clock skews between services: never negative.
        business_s = max(0, round(calendar.business_minutes_between(start, end) * 60))
        # In UTC: the difference of two datetimes of one zone is taken on the clock face.
        elapsed = end.astimezone(UTC) - start.astimezone(UTC)
        wall_s = max(0, round(elapsed.total_seconds()))
    due_at = risk_at = None
    if start is not None and target is not None:
        due_at = calendar.add_business_minutes(start, target)
        risk_at = calendar.add_business_minutes(start, target * at_risk_ratio)
    return StageMeasure(business_s, wall_s, due_at, risk_at)


class PolicyError(ValueError):
    """SLA settings that cannot be used (unknown stage in the targets, bad hours)."""


def build_policy(
    *,
    call_centre: BusinessCalendar,
    targets_minutes: Mapping[str, float],
    at_risk_ratio: float,
) -> SlaPolicy:
    unknown = sorted(set(targets_minutes) - set(STAGES_BY_NAME))
    if unknown:
        raise PolicyError(f"SLA targets name unknown stages: {', '.join(unknown)}")
    if any(value <= 0 for value in targets_minutes.values()):
        raise PolicyError("SLA targets must be positive minutes")
    return _cached_policy(
        call_centre, json.dumps(dict(targets_minutes), sort_keys=True), at_risk_ratio
    )


@lru_cache(maxsize=16)
def _cached_policy(
    call_centre: BusinessCalendar, targets_minutes: str, at_risk_ratio: float
) -> SlaPolicy:
    targets: dict[str, float] = json.loads(targets_minutes)
    return SlaPolicy(call_centre=call_centre, targets_minutes=targets, at_risk_ratio=at_risk_ratio)


def policy_from_settings(settings: CrmSettings) -> SlaPolicy:
    """The call centre's calendar is the one qualify reads (``CALL_CENTRE_*``)."""
    return build_policy(
        call_centre=settings.call_centre_calendar(),
        targets_minutes=settings.sla_targets_minutes,
        at_risk_ratio=settings.sla_at_risk_ratio,
    )
