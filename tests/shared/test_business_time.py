"""The business-time calendar: opening hours with breaks, weekends, holidays, DST, closures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.business_time import (
    BusinessCalendar,
    CalendarError,
    add_business_minutes,
    business_minutes_between,
    default_calendar,
    is_open,
    next_open,
    parse_weekly_hours,
)

PARIS = ZoneInfo("Europe/Paris")
# Monday to Friday 09:00-12:30 and 13:30-19:00 (a lunch break), Saturday morning.
CAL = BusinessCalendar.from_spec("mon-fri 09:00-12:30,13:30-19:00; sat 09:00-12:30")
WEEKDAYS_ONLY = BusinessCalendar.from_spec("mon-fri 09:00-18:00")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def test_parse_weekly_hours() -> None:
    weekly = parse_weekly_hours("mon-wed,fri 09:00-12:00,14:00-18:00; sat 10:00-24:00; wed closed")
    assert weekly[0] == ((540, 720), (840, 1080))
    assert weekly[2] == ()
    assert weekly[4] == ((540, 720), (840, 1080))
    assert 3 not in weekly
    assert weekly[5] == ((600, 1440),)


@pytest.mark.parametrize(
    "spec",
    [
        "mon 09:00",
        "mon 9h-10h",
        "xyz 09:00-10:00",
        "fri-mon 09:00-10:00",
        "mon 10:00-09:00",
        "mon 09:00-12:00,11:00-13:00",
        "mon 09:60-10:00",
        "mon 24:30-10:00",
    ],
)
def test_parse_weekly_hours_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(CalendarError):
        parse_weekly_hours(spec)


def test_unknown_subdivision_is_refused() -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar.from_spec("mon 09:00-10:00", subdivision="XX")


def test_within_a_morning() -> None:
    assert CAL.add_business_minutes(paris(2026, 11, 24, 10, 0), 15) == paris(2026, 11, 24, 10, 15)


def test_lunch_break_is_skipped() -> None:
    assert CAL.add_business_minutes(paris(2026, 11, 24, 12, 20), 15) == paris(2026, 11, 24, 13, 35)
    assert (
        CAL.business_minutes_between(paris(2026, 11, 24, 12, 0), paris(2026, 11, 24, 14, 0)) == 60
    )
    assert not CAL.is_open(paris(2026, 11, 24, 12, 30))
    assert CAL.is_open(paris(2026, 11, 24, 12, 29))
    assert CAL.next_open(paris(2026, 11, 24, 12, 45)) == paris(2026, 11, 24, 13, 30)


def test_friday_evening_to_monday() -> None:
    friday = paris(2026, 11, 27, 18, 50)
    assert WEEKDAYS_ONLY.add_business_minutes(paris(2026, 11, 27, 17, 50), 15) == paris(
        2026, 11, 30, 9, 5
    )
    # The Saturday morning counts in the calendar that opens then.
    assert CAL.add_business_minutes(friday, 15) == paris(2026, 11, 28, 9, 5)
    assert CAL.add_business_minutes(paris(2026, 11, 28, 12, 25), 15) == paris(2026, 11, 30, 9, 10)
    assert (
        WEEKDAYS_ONLY.business_minutes_between(
            paris(2026, 11, 27, 17, 0), paris(2026, 11, 30, 10, 0)
        )
        == 120
    )


def test_start_while_closed_counts_from_next_opening() -> None:
    assert CAL.add_business_minutes(paris(2026, 11, 24, 6, 0), 15) == paris(2026, 11, 24, 9, 15)
    assert CAL.add_business_minutes(paris(2026, 11, 29, 15, 0), 15) == paris(2026, 11, 30, 9, 15)
    assert CAL.add_business_minutes(paris(2026, 11, 24, 22, 0), 0) == paris(2026, 11, 25, 9, 0)
    assert CAL.next_open(paris(2026, 11, 24, 10, 0)) == paris(2026, 11, 24, 10, 0)


def test_public_holidays_are_closed() -> None:
    # Whit Monday 2026-05-25: Friday evening → Tuesday.
    assert WEEKDAYS_ONLY.add_business_minutes(paris(2026, 5, 22, 17, 55), 15) == paris(
        2026, 5, 26, 9, 10
    )
    assert not WEEKDAYS_ONLY.is_open(paris(2026, 5, 25, 11, 0))
    # Christmas day and 1 January.
    assert not WEEKDAYS_ONLY.is_open(paris(2026, 12, 25, 11, 0))
    assert WEEKDAYS_ONLY.next_open(paris(2026, 12, 31, 18, 30)) == paris(2027, 1, 4, 9, 0)
    assert WEEKDAYS_ONLY.holiday_name(date(2026, 5, 25)) is not None


def test_holidays_ignored_when_asked() -> None:
    calendar = BusinessCalendar.from_spec("mon-fri 09:00-18:00", observe_holidays=False)
    assert calendar.is_open(paris(2026, 5, 25, 11, 0))


def test_2026_and_2027_vectors_of_the_reference() -> None:
    national = [
        d
        for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(365))
        if WEEKDAYS_ONLY.is_holiday(d)
    ]
    assert [d.strftime("%m-%d") for d in national] == [
        "01-01", "04-06", "05-01", "05-08", "05-14", "05-25",
        "07-14", "08-15", "11-01", "11-11", "12-25",
    ]  # fmt: skip
    for moveable in (date(2027, 3, 29), date(2027, 5, 6), date(2027, 5, 17)):
        assert WEEKDAYS_ONLY.is_holiday(moveable)


def test_alsace_moselle_subdivision() -> None:
    alsace = BusinessCalendar.from_spec("mon-fri 09:00-18:00", subdivision="57")
    for day in (date(2026, 4, 3), date(2026, 12, 26), date(2027, 3, 26), date(2027, 12, 26)):
        assert alsace.is_holiday(day)
        assert not WEEKDAYS_ONLY.is_holiday(day)
    # Good Friday 2026 is a Friday: closed in Moselle, open elsewhere.
    assert not alsace.is_open(paris(2026, 4, 3, 10, 0))
    assert WEEKDAYS_ONLY.is_open(paris(2026, 4, 3, 10, 0))


def test_closures() -> None:
    calendar = BusinessCalendar.from_spec("mon-fri 09:00-18:00", closures=[date(2026, 11, 24)])
    assert not calendar.is_open(paris(2026, 11, 24, 10, 0))
    assert calendar.next_open(paris(2026, 11, 24, 10, 0)) == paris(2026, 11, 25, 9, 0)


def test_spring_forward_day() -> None:
    # 2026-03-29: 02:00 → 03:00. An all-day calendar has 23 real hours that day.
    always = BusinessCalendar.from_spec("mon-sun 00:00-24:00", observe_holidays=False)
    assert always.business_minutes_between(paris(2026, 3, 29, 0, 0), paris(2026, 3, 30, 0, 0)) == (
        23 * 60
    )
    assert always.add_business_minutes(paris(2026, 3, 29, 1, 30), 60) == paris(2026, 3, 29, 3, 30)
    # A 10:00-13:00 interval lasts three real hours on that Sunday.
    sunday = BusinessCalendar.from_spec("sun 10:00-13:00", observe_holidays=False)
    assert sunday.add_business_minutes(paris(2026, 3, 29, 9, 0), 180) == paris(2026, 3, 29, 13, 0)
    assert sunday.add_business_minutes(paris(2026, 3, 29, 9, 0), 180).astimezone(UTC).hour == 11


def test_fall_back_day() -> None:
    # 2026-10-25: 03:00 → 02:00. The all-day calendar has 25 real hours that day.
    always = BusinessCalendar.from_spec("mon-sun 00:00-24:00", observe_holidays=False)
    assert always.business_minutes_between(
        paris(2026, 10, 25, 0, 0), paris(2026, 10, 26, 0, 0)
    ) == (25 * 60)
    # Friday before the change → Monday after it, with CET offsets on the far side.
    due = WEEKDAYS_ONLY.add_business_minutes(paris(2026, 10, 23, 17, 50), 15)
    assert due == paris(2026, 10, 26, 9, 5)
    assert due.astimezone(PARIS).utcoffset() == timedelta(hours=1)


def test_between_is_antisymmetric_and_consistent_with_add() -> None:
    start = paris(2026, 11, 20, 16, 47)
    for minutes in (1, 15, 60, 200, 600, 2000):
        end = CAL.add_business_minutes(start, minutes)
        assert CAL.business_minutes_between(start, end) == pytest.approx(minutes)
        assert CAL.business_minutes_between(end, start) == pytest.approx(-minutes)


def test_results_are_utc_and_inputs_must_be_aware() -> None:
    result = CAL.add_business_minutes(paris(2026, 11, 24, 10, 0), 1)
    assert result.tzinfo is UTC
    with pytest.raises(CalendarError):
        CAL.add_business_minutes(datetime(2026, 11, 24, 10, 0), 1)
    with pytest.raises(CalendarError):
        CAL.add_business_minutes(paris(2026, 11, 24, 10, 0), -1)


def test_a_calendar_that_never_opens_fails() -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar(weekly={}).next_open(paris(2026, 11, 24, 10, 0))


def test_module_functions_use_the_default_calendar() -> None:
    start = paris(2026, 11, 24, 12, 25)
    assert add_business_minutes(start, 15) == default_calendar().add_business_minutes(start, 15)
    assert add_business_minutes(start, 15) == paris(2026, 11, 24, 13, 40)
    assert business_minutes_between(start, paris(2026, 11, 24, 13, 40)) == 15
    assert is_open(start)
    assert next_open(paris(2026, 11, 24, 12, 40)) == paris(2026, 11, 24, 13, 30)
