"""The sites' calendars, as dispatch enforces them: ``site.calendar-changed.v1`` (topic
``vo.directory``, one event per site and one for the full-web pool, each a whole calendar) is the
only source of the business time of the sites' stages.

A lead is measured on its site's calendar, or on the full-web pool's when its channel is
``full_web``. Until that calendar has arrived, the lead's site stages are measured on the call
centre's hours and the row is marked provisional; when the calendar arrives (or changes), the
provisional rows of that calendar and the open leads on it (their running deadlines) are
measured again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from shared.business_time import BusinessCalendar
from shared.events.payloads import FULL_WEB_POOL, SiteCalendarChangedV1

CALENDAR_CHANGED = "site.calendar-changed.v1"


def calendar_key(site: str | None, channel: str | None) -> str | None:
    """Whose calendar measures a lead's site stages (None: no site known yet)."""
    return FULL_WEB_POOL if channel == "full_web" else site


@dataclass(frozen=True)
class CalendarSpec:
    """What makes a calendar (what ``sla_calendar`` stores, ``changed_at`` aside)."""

    pool: str
    timezone: str
    opening_hours: str
    holiday_subdivision: str | None
    observe_holidays: bool
    closures: tuple[date, ...]

    @classmethod
    def of_event(cls, event: SiteCalendarChangedV1) -> CalendarSpec:
        return cls(
            pool=event.pool,
            timezone=event.timezone,
            opening_hours=event.opening_hours,
            holiday_subdivision=event.holiday_subdivision,
            observe_holidays=event.observe_holidays,
            closures=tuple(sorted(event.closures)),
        )

    def calendar(self) -> BusinessCalendar:
        return _calendar(self)


@lru_cache(maxsize=1024)
def _calendar(spec: CalendarSpec) -> BusinessCalendar:
    # Built once per distinct calendar: parsing and the holidays table are not free.
    return BusinessCalendar.from_spec(
        spec.opening_hours,
        timezone=spec.timezone,
        subdivision=spec.holiday_subdivision,
        closures=spec.closures,
        observe_holidays=spec.observe_holidays,
    )
