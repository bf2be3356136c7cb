"""Legal rules for outbound phone calls to consumers in France, as pure functions.

Sources (see ../shared/reference/privacy-and-contact-rules.md §3, §5, §6 rules 13-18):

- Code de la consommation D223-9 (décret n° 2022-1313): calls only Monday to Friday,
  10:00-13:00 and 14:00-20:00, in the consumer's time zone; never on the public holidays of
  Code du travail L3133-1. Default here: Alsace-Moselle and DOM days are excluded too when a
  subdivision is given (``exclude_regional_holidays``).
- At most 4 calls or attempts per consumer per rolling 30 days (unanswered ones count).
- A refusal expressed during a call blocks calls for 60 days, and for good from 2026-08-11
  (loi n° 2025-594, opt-in regime).
- Exceptions to the hours only: the consumer's own request being answered (a reply to their
  enquiry about a vehicle, within a short delay: CAA Lyon 10 Nov 2023 n° 22LY01667, 48 h there),
  or a stored, express request of the consumer for that slot (time, channel, wording). Neither
  exception lifts the 4-per-30-days limit or a refusal.

Callers pass everything in (now, the consumer's previous calls and refusals): no I/O here, so
qualify and dispatch share the same rules and tests. ``rules_for_phone`` moves the rules to an
overseas consumer's time zone and regional holidays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from shared.business_time import BusinessCalendar, parse_weekly_hours

LEGAL_CALLING_HOURS = "mon-fri 10:00-13:00,14:00-20:00"
OPTIN_REGIME_START = date(2026, 8, 11)


class Refusal(StrEnum):
    """Why a call is not allowed (stable codes: APIs return them as ``reason``)."""

    WEEKEND = "weekend"
    PUBLIC_HOLIDAY = "public_holiday"
    OUTSIDE_HOURS = "outside_calling_hours"
    CALL_LIMIT = "call_limit_reached"
    CONSUMER_REFUSED = "consumer_refused_calls"


class Exemption(StrEnum):
    """Why a call outside the legal hours is allowed anyway."""

    OWN_REQUEST = "answering_own_request"
    REQUESTED_SLOT = "consumer_requested_slot"


_MESSAGES: dict[Refusal, str] = {
    Refusal.WEEKEND: "Calls to consumers are not allowed on Saturdays and Sundays.",
    Refusal.PUBLIC_HOLIDAY: "Calls to consumers are not allowed on public holidays.",
    Refusal.OUTSIDE_HOURS: "Calls to consumers are allowed 10:00-13:00 and 14:00-20:00 only.",
    Refusal.CALL_LIMIT: "The consumer was already called the maximum number of times in the "
    "rolling period.",
    Refusal.CONSUMER_REFUSED: "The consumer refused calls; they may not be called again yet.",
}


def describe(reason: Refusal) -> str:
    return _MESSAGES[reason]


@dataclass(frozen=True)
class CallingRules:
    """The configurable figures of the rules, with the legal defaults."""

    hours: str = LEGAL_CALLING_HOURS
    timezone: str = "Europe/Paris"
    subdivision: str | None = None
    exclude_regional_holidays: bool = True
    max_calls: int = 4
    period: timedelta = timedelta(days=30)
    refusal_block: timedelta = timedelta(days=60)
    refusal_permanent_from: date | None = OPTIN_REGIME_START
    own_request_exempt: bool = True
    own_request_max_age: timedelta = timedelta(hours=48)
    calendar: BusinessCalendar = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        calendar = BusinessCalendar(
            weekly=parse_weekly_hours(self.hours),
            timezone=self.timezone,
            subdivision=self.subdivision if self.exclude_regional_holidays else None,
        )
        object.__setattr__(self, "calendar", calendar)


@dataclass(frozen=True)
class RequestedSlot:
    """A consumer's express request to be called in ``[start, end)``, with its proof."""

    start: datetime
    end: datetime
    requested_at: datetime

    def covers(self, moment: datetime) -> bool:
        return self.requested_at <= moment and self.start <= moment < self.end


@dataclass(frozen=True)
class CallDecision:
    allowed: bool
    reason: Refusal | None = None
    exemption: Exemption | None = None
    next_allowed_at: datetime | None = None

    @property
    def message(self) -> str | None:
        return describe(self.reason) if self.reason is not None else None


def window_refusal(now: datetime, rules: CallingRules) -> Refusal | None:
    """Why ``now`` is outside the legal calling hours, or None inside them."""
    calendar = rules.calendar
    local = calendar.local(now)
    if calendar.is_holiday(local.date()):
        return Refusal.PUBLIC_HOLIDAY
    if not calendar.weekly.get(local.weekday()):
        return Refusal.WEEKEND
    if not calendar.is_open(now):
        return Refusal.OUTSIDE_HOURS
    return None


def in_calling_window(now: datetime, rules: CallingRules | None = None) -> bool:
    return window_refusal(now, rules or CallingRules()) is None


def refusal_blocks_until(refused_at: datetime, rules: CallingRules) -> datetime | None:
    """Until when a refusal blocks calls; None means for good."""
    permanent_from = rules.refusal_permanent_from
    if permanent_from is not None and rules.calendar.local(refused_at).date() >= permanent_from:
        return None
    return refused_at + rules.refusal_block


def allowed(
    now: datetime,
    *,
    rules: CallingRules | None = None,
    previous_calls: Iterable[datetime] = (),
    refusals: Iterable[datetime] = (),
    own_request_at: datetime | None = None,
    requested_slot: RequestedSlot | None = None,
) -> CallDecision:
    """May the consumer be called at ``now``?

    ``previous_calls``: when this consumer (phone number) was called before, by anyone of the
    dealer, answered or not. ``refusals``: when they refused calls. ``own_request_at``: when the
    consumer's own request (an enquiry about a vehicle) was received, if this call answers it.
    ``requested_slot``: a stored express request for the slot of this call.
    """
    rules = rules or CallingRules()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)

    blocked_until: datetime | None = None
    blocked = False
    for refused_at in refusals:
        if refused_at > now:
            continue
        until = refusal_blocks_until(refused_at, rules)
        if until is None:
            return CallDecision(False, Refusal.CONSUMER_REFUSED)
        if until > now:
            blocked = True
            blocked_until = max(blocked_until or until, until)
    if blocked:
        return CallDecision(
            False, Refusal.CONSUMER_REFUSED, next_allowed_at=_next_window(blocked_until, rules)
        )

    since = now - rules.period
    recent = sorted(moment for moment in previous_calls if since < moment <= now)
    if len(recent) >= rules.max_calls:
        # The oldest counted call leaves the rolling period after ``period``.
        frees_at = recent[len(recent) - rules.max_calls] + rules.period
        return CallDecision(
            False, Refusal.CALL_LIMIT, next_allowed_at=_next_window(frees_at, rules)
        )

    refusal = window_refusal(now, rules)
    if refusal is None:
        return CallDecision(True)
    if requested_slot is not None and requested_slot.covers(now):
        return CallDecision(True, exemption=Exemption.REQUESTED_SLOT)
    if (
        rules.own_request_exempt
        and own_request_at is not None
        and own_request_at <= now < own_request_at + rules.own_request_max_age
    ):
        return CallDecision(True, exemption=Exemption.OWN_REQUEST)
    return CallDecision(False, refusal, next_allowed_at=_next_window(now, rules))


def _next_window(moment: datetime | None, rules: CallingRules) -> datetime | None:
    if moment is None:
        return None
    return rules.calendar.next_open(moment)


# Overseas departments by E.164 prefix: (time zone, ``holidays`` subdivision). Longest first.
_OVERSEAS: tuple[tuple[str, str, str], ...] = (
    ("+262269", "Indian/Mayotte", "976"),
    ("+262639", "Indian/Mayotte", "976"),
    ("+262", "Indian/Reunion", "974"),
    ("+590", "America/Guadeloupe", "971"),
    ("+594", "America/Cayenne", "973"),
    ("+596", "America/Martinique", "972"),
)


def consumer_zone(phone: str | None) -> tuple[str, str] | None:
    """(time zone, holiday subdivision) of an overseas-department number (E.164), else None."""
    if not phone:
        return None
    for prefix, zone, subdivision in _OVERSEAS:
        if phone.startswith(prefix):
            return zone, subdivision
    return None


@lru_cache(maxsize=256)
def _rules_in_zone(rules: CallingRules, zone: str, subdivision: str) -> CallingRules:
    return replace(rules, timezone=zone, subdivision=subdivision)


def rules_for_phone(rules: CallingRules, phone: str | None) -> CallingRules:
    """The rules in the consumer's own time zone and regional holidays: overseas numbers
    (Réunion, Mayotte, Guadeloupe, Martinique, Guyane) get theirs; other numbers keep ``rules``.
    Regional holidays apply only with ``exclude_regional_holidays``."""
    overseas = consumer_zone(phone)
    if overseas is None:
        return rules
    return _rules_in_zone(rules, *overseas)
