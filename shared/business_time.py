"""Business-time calendar: weekly opening hours with breaks, closures and French public holidays.

One generic calendar for every deadline in business time (operators' first call, sellers' SLA,
follow-ups). Opening hours are local wall-clock times in the calendar's time zone (Europe/Paris by
default); arithmetic is done on real instants (UTC), so both DST change days are handled: an
interval 10:00-13:00 lasts three real hours on the day the clocks change too.

Public holidays come from the maintained ``holidays`` package (France, optional subdivision:
``"57"``/``"6AE"`` for Alsace-Moselle, ``"974"`` for La Réunion…), never from a hand-written list.

    calendar = BusinessCalendar(weekly=parse_weekly_hours("mon-fri 09:00-12:00,14:00-18:00"))
    due = calendar.add_business_minutes(received_at, 15)

Every datetime in and out is timezone-aware; results are in UTC.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import holidays

DEFAULT_TIMEZONE = "Europe/Paris"
MINUTES_PER_DAY = 24 * 60
# No real calendar is closed this long; a calendar that never opens fails instead of looping.
_MAX_SEARCH_DAYS = 3 * 366
_DAY_CACHE_SIZE = 20_000

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Interval = tuple[int, int]
"""Opening interval of one day in minutes from local midnight: ``[start, end)``, end ≤ 1440."""


class CalendarError(ValueError):
    """A calendar definition that cannot be used (bad hours, never open, naive datetime)."""


def _minutes(text: str) -> int:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if match is None:
        raise CalendarError(f"not a HH:MM time: {text.strip()!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes != 0):
        raise CalendarError(f"not a HH:MM time: {text.strip()!r}")
    return hours * 60 + minutes


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        part = part.strip().lower()
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise CalendarError(f"not a weekday or weekday range: {part!r}")
        start = WEEKDAYS.index(first)
        stop = WEEKDAYS.index(last) if last else start
        if stop < start:
            raise CalendarError(f"weekday range goes backwards: {part!r}")
        days.extend(range(start, stop + 1))
    return days


def parse_weekly_hours(spec: str) -> dict[int, tuple[Interval, ...]]:
    """Parse ``"mon-fri 09:00-12:30,13:30-19:00; sat 09:00-12:00"`` (Monday = 0).

    Groups are separated by ``;``. A later group replaces the hours of the days it names. Days
    not named are closed. Intervals of a day must not overlap; ``24:00`` ends a day.
    """
    weekly: dict[int, tuple[Interval, ...]] = {}
    for group in spec.split(";"):
        group = group.strip()
        if not group:
            continue
        days_text, _, hours_text = group.partition(" ")
        if not hours_text.strip():
            raise CalendarError(f"no hours for {days_text!r}")
        intervals: list[Interval] = []
        if hours_text.strip().lower() != "closed":
            for chunk in hours_text.split(","):
                start_text, sep, end_text = chunk.partition("-")
                if not sep:
                    raise CalendarError(f"not an HH:MM-HH:MM interval: {chunk.strip()!r}")
                intervals.append((_minutes(start_text), _minutes(end_text)))
        for day in _days(days_text):
            weekly[day] = tuple(intervals)
    return {day: _checked(intervals) for day, intervals in weekly.items()}


def _checked(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    ordered = sorted(intervals)
    for start, end in ordered:
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise CalendarError("an opening interval must start before it ends, within a day")
    for (_, previous_end), (next_start, _) in itertools.pairwise(ordered):
        if next_start < previous_end:
            raise CalendarError("opening intervals of a day overlap")
    return tuple(ordered)


def _aware(moment: datetime, name: str = "datetime") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError(f"{name} must be timezone-aware")
    return moment


@dataclass(frozen=True)
class BusinessCalendar:
    """Opening hours per weekday, minus public holidays and closures, in one time zone.

    ``weekly``: weekday (Monday = 0) → opening intervals in minutes from local midnight.
    ``subdivision``: ``holidays`` subdivision code of France (``"57"``, ``"67"``, ``"68"``,
    ``"6AE"`` Alsace-Moselle, ``"974"``…); None for the national list (Code du travail L3133-1).
    ``closures``: extra closed days (the centre's own closures).
    ``observe_holidays``: False for a calendar that ignores public holidays.
    """

    weekly: Mapping[int, tuple[Interval, ...]]
    timezone: str = DEFAULT_TIMEZONE
    subdivision: str | None = None
    closures: frozenset[date] = field(default_factory=frozenset)
    observe_holidays: bool = True

    def __post_init__(self) -> None:
        checked = {day: _checked(intervals) for day, intervals in self.weekly.items()}
        if any(day not in range(7) for day in checked):
            raise CalendarError("weekdays are 0 (Monday) to 6 (Sunday)")
        object.__setattr__(self, "weekly", checked)
        object.__setattr__(self, "closures", frozenset(self.closures))
        self._holidays  # noqa: B018 - fail early on an unknown subdivision

    @classmethod
    def from_spec(
        cls,
        spec: str,
        *,
        timezone: str = DEFAULT_TIMEZONE,
        subdivision: str | None = None,
        closures: Iterable[date] = (),
        observe_holidays: bool = True,
    ) -> BusinessCalendar:
        return cls(
            weekly=parse_weekly_hours(spec),
            timezone=timezone,
            subdivision=subdivision,
            closures=frozenset(closures),
            observe_holidays=observe_holidays,
        )

    # -- calendar --------------------------------------------------------------------------

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> Any:
        try:
            return holidays.country_holidays("FR", subdiv=self.subdivision)
        except NotImplementedError as exc:
            raise CalendarError(f"unknown French subdivision {self.subdivision!r}") from exc

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.weekly.items())), self.timezone, self.subdivision))

    def is_holiday(self, day: date) -> bool:
        return self.observe_holidays and day in self._holidays

    def holiday_name(self, day: date) -> str | None:
        if not self.is_holiday(day):
            return None
        return str(self._holidays.get(day))

    def is_closed_day(self, day: date) -> bool:
        """No opening at all on this local date (weekly hours, holiday or closure)."""
        return not self.weekly.get(day.weekday()) or self.is_holiday(day) or day in self.closures

    def local(self, moment: datetime) -> datetime:
        return _aware(moment).astimezone(self.zone)

    def _at(self, day: date, minute: int) -> datetime:
        """The UTC instant of a local wall-clock minute (a time in the spring-forward gap maps
        to the instant after the gap, one that occurs twice to its first occurrence)."""
        if minute >= MINUTES_PER_DAY:
            day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
        naive = datetime.combine(day, time(minute // 60, minute % 60))
        local = naive.replace(tzinfo=self.zone, fold=0)
        # Round-trip through UTC: a non-existent wall time resolves to a real instant.
        return local.astimezone(UTC)

    @cached_property
    def _day_cache(self) -> dict[date, tuple[tuple[datetime, datetime], ...]]:
        return {}

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The opening intervals of a local date as UTC instants ``[start, end)``."""
        cached = self._day_cache.get(day)
        if cached is None:
            result: list[tuple[datetime, datetime]] = []
            if not self.is_closed_day(day):
                for start, end in self.weekly.get(day.weekday(), ()):
                    opens, closes = self._at(day, start), self._at(day, end)
                    if closes > opens:
                        result.append((opens, closes))
            cached = tuple(result)
            if len(self._day_cache) < _DAY_CACHE_SIZE:
                self._day_cache[day] = cached
        return list(cached)

    def _intervals_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening intervals that end after ``moment``, in order (bounded search)."""
        day = self.local(moment).date()
        empty_days = 0
        while empty_days <= _MAX_SEARCH_DAYS:
            intervals = self.intervals_on(day)
            empty_days = 0 if intervals else empty_days + 1
            for opens, closes in intervals:
                if closes > moment:
                    yield opens, closes
            day += timedelta(days=1)
        raise CalendarError("the calendar never opens")

    # -- queries ---------------------------------------------------------------------------

    def is_open(self, moment: datetime) -> bool:
        moment = _aware(moment)
        return any(
            opens <= moment < closes
            for opens, closes in self.intervals_on(self.local(moment).date())
        )

    def next_open(self, moment: datetime) -> datetime:
        """``moment`` itself (in UTC) when open, else the start of the next opening."""
        moment = _aware(moment).astimezone(UTC)
        for opens, _closes in self._intervals_from(moment):
            return max(opens, moment)
        raise CalendarError("the calendar never opens")  # pragma: no cover - iterator raises

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The instant ``minutes`` of opening time after ``start`` (UTC).

        A start while closed counts from the next opening; a result that lands exactly on a
        closing time stays there (the deadline is the last open instant). ``minutes`` = 0 gives
        ``next_open(start)``. Negative minutes are refused.
        """
        if minutes < 0:
            raise CalendarError("minutes must not be negative")
        remaining = timedelta(minutes=minutes)
        cursor = _aware(start, "start").astimezone(UTC)
        for opens, closes in self._intervals_from(cursor):
            begin = max(opens, cursor)
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
            cursor = closes
        raise CalendarError("the calendar never opens")  # pragma: no cover - iterator raises

    def business_minutes_between(self, start: datetime, end: datetime) -> float:
        """Opening minutes in ``[start, end)``; negative when ``end`` is before ``start``."""
        start, end = _aware(start, "start").astimezone(UTC), _aware(end, "end").astimezone(UTC)
        if end < start:
            return -self.business_minutes_between(end, start)
        total = timedelta()
        day = self.local(start).date()
        last_day = self.local(end).date()
        while day <= last_day:
            for opens, closes in self.intervals_on(day):
                overlap = min(closes, end) - max(opens, start)
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return total.total_seconds() / 60


DEFAULT_CALL_CENTRE_HOURS = "mon-fri 09:00-12:30,13:30-19:00; sat 09:00-12:30"
"""Default opening hours of the operators' call centre (configurable per service)."""


def default_calendar() -> BusinessCalendar:
    return BusinessCalendar.from_spec(DEFAULT_CALL_CENTRE_HOURS)


def add_business_minutes(
    start: datetime, minutes: float, calendar: BusinessCalendar | None = None
) -> datetime:
    return (calendar or default_calendar()).add_business_minutes(start, minutes)


def business_minutes_between(
    start: datetime, end: datetime, calendar: BusinessCalendar | None = None
) -> float:
    return (calendar or default_calendar()).business_minutes_between(start, end)


def is_open(moment: datetime, calendar: BusinessCalendar | None = None) -> bool:
    return (calendar or default_calendar()).is_open(moment)


def next_open(moment: datetime, calendar: BusinessCalendar | None = None) -> datetime:
    return (calendar or default_calendar()).next_open(moment)
