"""Business-time calendars of sites, sellers' shifts and the full-web pool (cached by spec)."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from dispatch.models import Seller, Site
from shared.business_time import BusinessCalendar
from shared.contact_rules import CallingRules

PARIS = "Europe/Paris"


@lru_cache(maxsize=4096)
def _calendar(
    spec: str, timezone: str, subdivision: str | None, closures: tuple[str, ...], holidays: bool
) -> BusinessCalendar:
    return BusinessCalendar.from_spec(
        spec,
        timezone=timezone,
        subdivision=subdivision,
        closures=[date.fromisoformat(day) for day in closures],
        observe_holidays=holidays,
    )


def site_calendar(site: Site) -> BusinessCalendar:
    """The site's opening hours, public holidays (its subdivision) and closures."""
    return _calendar(
        site.opening_hours,
        site.timezone,
        site.holiday_subdivision,
        tuple(sorted(site.closures)),
        True,
    )


def full_web_calendar(spec: str) -> BusinessCalendar:
    return _calendar(spec, PARIS, None, (), True)


def shift_calendar(spec: str, timezone: str) -> BusinessCalendar:
    """A seller's weekly shifts (holidays are the site's business, not the shift's)."""
    return _calendar(spec, timezone, None, (), False)


def in_legal_window(moment: datetime, rules: CallingRules) -> datetime:
    """``moment`` if a seller may call then, else the start of the next legal calling window
    (D223-9 hours, public holidays; ``rules`` come from the shared ``CALLING_*`` settings, in the
    consumer's zone): a reminder never asks for a call at a forbidden time."""
    return rules.calendar.next_open(moment)


def is_absent(seller: Seller, now: datetime) -> bool:
    for absence in seller.absences:
        if datetime.fromisoformat(absence["start"]) <= now < datetime.fromisoformat(absence["end"]):
            return True
    return False


def on_shift(seller: Seller, now: datetime, timezone: str) -> bool:
    return shift_calendar(seller.shifts, timezone).is_open(now) and not is_absent(seller, now)
