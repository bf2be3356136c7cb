"""SLA durations at the edges of business time: lunch break, Friday evening to Monday, public
holiday, both DST days, a lead received while closed. Wall time is real elapsed time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crm.sla.stages import STAGES_BY_NAME, PolicyError, SlaPolicy, build_policy
from shared.business_time import BusinessCalendar

PARIS = ZoneInfo("Europe/Paris")
FIRST_ATTEMPT = STAGES_BY_NAME["first_attempt"]
SELLER_CONTACT = STAGES_BY_NAME["seller_contact"]


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


SITE = BusinessCalendar.from_spec("mon-sat 09:00-12:00,14:00-19:00")


def policy(call_centre: str = "mon-fri 09:00-12:30,13:30-19:00") -> SlaPolicy:
    return build_policy(
        call_centre=BusinessCalendar.from_spec(call_centre),
        targets_minutes={"first_attempt": 15, "accepted": 10, "seller_contact": 60},
        at_risk_ratio=0.8,
    )


def test_lunch_break_does_not_count() -> None:
    received, attempt = paris(2026, 11, 24, 12, 20), paris(2026, 11, 24, 13, 40)
    measure = policy().measure(FIRST_ATTEMPT, received, attempt, None)
    assert measure.business_s == 20 * 60  # 12:20-12:30 and 13:30-13:40
    assert measure.wall_s == 80 * 60
    assert measure.due_at == paris(2026, 11, 24, 13, 35).astimezone(UTC)
    assert measure.risk_at == paris(2026, 11, 24, 13, 32).astimezone(UTC)  # 12 of 15 minutes


def test_friday_evening_to_monday_counts_only_opening_minutes() -> None:
    received, attempt = paris(2026, 11, 27, 18, 50), paris(2026, 11, 30, 9, 10)
    measure = policy().measure(FIRST_ATTEMPT, received, attempt, None)
    assert measure.business_s == 20 * 60
    assert measure.wall_s == (62 * 60 + 20) * 60
    assert measure.due_at == paris(2026, 11, 30, 9, 5).astimezone(UTC)


def test_saturday_morning_counts_when_the_calendar_opens_on_saturday() -> None:
    received, attempt = paris(2026, 11, 27, 18, 50), paris(2026, 11, 30, 9, 10)
    saturday = policy(call_centre="mon-fri 09:00-12:30,13:30-19:00; sat 09:00-12:30")
    assert saturday.measure(FIRST_ATTEMPT, received, attempt, None).business_s == 230 * 60


def test_public_holiday_is_closed() -> None:
    # Wednesday 11 November 2026 (Armistice) is a French public holiday.
    received, attempt = paris(2026, 11, 10, 18, 50), paris(2026, 11, 12, 9, 10)
    measure = policy().measure(FIRST_ATTEMPT, received, attempt, None)
    assert measure.business_s == 20 * 60
    assert measure.due_at == paris(2026, 11, 12, 9, 5).astimezone(UTC)


def test_spring_forward_weekend_wall_time_is_one_hour_shorter() -> None:
    # 29 March 2026: 02:00 → 03:00. Saturday noon to Monday 09:10 is 45h10 on the clock face.
    received, attempt = paris(2026, 3, 28, 12, 0), paris(2026, 3, 30, 9, 10)
    measure = policy().measure(FIRST_ATTEMPT, received, attempt, None)
    assert measure.business_s == 10 * 60
    assert measure.wall_s == (44 * 60 + 10) * 60


@pytest.mark.parametrize(
    ("day", "real_minutes"),
    [(29, 60), (25, 180)],  # 29 March 2026 (spring forward), 25 October 2026 (fall back)
)
def test_both_dst_days_count_real_minutes_across_the_change(day: int, real_minutes: int) -> None:
    month = 3 if day == 29 else 10
    night_shop = BusinessCalendar.from_spec("mon-sun 00:00-24:00")
    start = paris(2026, month, day, 1, 30)  # before the change (first 01:30 in October)
    end = paris(2026, month, day, 3, 30)  # after it
    measure = policy().measure(SELLER_CONTACT, start, end, night_shop)
    assert measure.business_s == real_minutes * 60
    assert measure.wall_s == real_minutes * 60
    # The 60-minute deadline is 60 real minutes later, whatever the clock face says.
    assert measure.due_at is not None
    assert (measure.due_at - start).total_seconds() == 3600


def test_dst_day_with_ordinary_hours_keeps_full_openings() -> None:
    # Monday after each change: 09:00-19:00 on the site is 8 business hours (with the break).
    for day in (paris(2026, 3, 30, 9, 0), paris(2026, 10, 26, 9, 0)):
        end = day.replace(hour=19)
        measure = policy().measure(SELLER_CONTACT, day, end, SITE)
        assert measure.business_s == 8 * 3600


def test_lead_received_while_closed_starts_the_clock_at_the_opening() -> None:
    received, attempt = paris(2026, 11, 29, 10, 0), paris(2026, 11, 30, 9, 5)  # Sunday → Monday
    measure = policy().measure(FIRST_ATTEMPT, received, attempt, None)
    assert measure.business_s == 5 * 60
    assert measure.due_at == paris(2026, 11, 30, 9, 15).astimezone(UTC)
    early = policy().measure(
        FIRST_ATTEMPT, paris(2026, 11, 24, 7, 0), paris(2026, 11, 24, 9, 15), None
    )
    assert early.business_s == 15 * 60  # exactly on target: not a breach (> target breaches)


def test_site_stages_follow_the_site_calendar_and_default_to_the_call_centre() -> None:
    lyon = BusinessCalendar.from_spec("mon-fri 08:00-20:00")
    start, end = paris(2026, 11, 24, 12, 0), paris(2026, 11, 24, 15, 0)
    assert policy().measure(SELLER_CONTACT, start, end, lyon).business_s == 180 * 60
    assert policy().measure(SELLER_CONTACT, start, end, SITE).business_s == 60 * 60
    # A site whose calendar is not known yet: the call centre's hours (12:00-12:30, 13:30-15:00).
    assert policy().measure(SELLER_CONTACT, start, end, None).business_s == 120 * 60
    # Operators' stages use the call-centre calendar whatever the site.
    assert policy().measure(FIRST_ATTEMPT, start, end, lyon).business_s == 120 * 60


def test_out_of_order_instants_never_give_negative_durations() -> None:
    measure = policy().measure(
        FIRST_ATTEMPT, paris(2026, 11, 24, 10, 0), paris(2026, 11, 24, 9, 59), None
    )
    assert measure.business_s == 0
    assert measure.wall_s == 0


def test_bad_targets_are_refused() -> None:
    with pytest.raises(PolicyError):
        build_policy(
            call_centre=BusinessCalendar.from_spec("mon-fri 09:00-18:00"),
            targets_minutes={"coffee": 5},
            at_risk_ratio=0.8,
        )
