"""Legal calling rules (D223-9 hours, holidays, 4 calls / 30 days, refusals, exceptions)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.contact_rules import (
    CallingRules,
    Exemption,
    Refusal,
    RequestedSlot,
    allowed,
    consumer_zone,
    in_calling_window,
    refusal_blocks_until,
    rules_for_phone,
    window_refusal,
)

PARIS = ZoneInfo("Europe/Paris")
RULES = CallingRules()


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (9, 59, False),
        (10, 0, True),
        (12, 59, True),
        (13, 0, False),
        (13, 59, False),
        (14, 0, True),
        (19, 59, True),
        (20, 0, False),
    ],
)
def test_window_edges_on_a_weekday(hour: int, minute: int, expected: bool) -> None:
    moment = paris(2026, 11, 24, hour, minute)  # a Tuesday
    decision = allowed(moment)
    assert decision.allowed is expected
    assert in_calling_window(moment) is expected
    if not expected:
        assert decision.reason is Refusal.OUTSIDE_HOURS
        assert decision.next_allowed_at is not None
        assert in_calling_window(decision.next_allowed_at)


def test_weekend_is_refused() -> None:
    for day in (28, 29):  # Saturday, Sunday
        decision = allowed(paris(2026, 11, day, 11, 0))
        assert not decision.allowed
        assert decision.reason is Refusal.WEEKEND
        assert decision.next_allowed_at == paris(2026, 11, 30, 10, 0)


def test_whit_monday_is_refused() -> None:
    decision = allowed(paris(2026, 5, 25, 11, 0))
    assert not decision.allowed
    assert decision.reason is Refusal.PUBLIC_HOLIDAY
    assert decision.next_allowed_at == paris(2026, 5, 26, 10, 0)
    assert allowed(paris(2026, 5, 26, 11, 0)).allowed


def test_dst_change_days() -> None:
    # Monday after spring-forward and Monday after fall-back: the window is local time.
    assert allowed(paris(2026, 3, 30, 10, 0)).allowed
    assert not allowed(paris(2026, 3, 30, 9, 59)).allowed
    assert window_refusal(paris(2026, 3, 29, 10, 30), RULES) is Refusal.WEEKEND
    assert allowed(paris(2026, 10, 26, 19, 59)).allowed
    assert not allowed(paris(2026, 10, 26, 20, 0)).allowed
    # 08:30 UTC is 10:30 in summer (allowed) but 09:30 in winter (refused).
    from datetime import UTC

    assert allowed(datetime(2026, 10, 23, 8, 30, tzinfo=UTC)).allowed
    assert not allowed(datetime(2026, 10, 26, 8, 30, tzinfo=UTC)).allowed


def test_regional_holidays_when_a_subdivision_is_given() -> None:
    good_friday = paris(2026, 4, 3, 11, 0)
    assert allowed(good_friday).allowed
    moselle = CallingRules(subdivision="57")
    assert allowed(good_friday, rules=moselle).reason is Refusal.PUBLIC_HOLIDAY
    national_only = CallingRules(subdivision="57", exclude_regional_holidays=False)
    assert allowed(good_friday, rules=national_only).allowed


def test_four_calls_per_rolling_thirty_days() -> None:
    now = paris(2026, 11, 24, 11, 0)
    three = [now - timedelta(days=d) for d in (1, 5, 20)]
    assert allowed(now, previous_calls=three).allowed
    four = [*three, now - timedelta(days=29, hours=23)]
    decision = allowed(now, previous_calls=four)
    assert not decision.allowed
    assert decision.reason is Refusal.CALL_LIMIT
    # The oldest counted call leaves the period in one hour: allowed from then (in the window).
    assert decision.next_allowed_at == now + timedelta(hours=1)
    # A call older than 30 days does not count.
    old = [*three, now - timedelta(days=30)]
    assert allowed(now, previous_calls=old).allowed


def test_call_limit_applies_even_to_exempt_calls() -> None:
    now = paris(2026, 11, 24, 21, 0)
    four = [now - timedelta(days=d) for d in (1, 2, 3, 4)]
    decision = allowed(now, previous_calls=four, own_request_at=now - timedelta(hours=1))
    assert decision.reason is Refusal.CALL_LIMIT


def test_refusal_blocks_sixty_days_before_the_optin_regime() -> None:
    refused = paris(2026, 6, 1, 11, 0)
    assert refusal_blocks_until(refused, RULES) == refused + timedelta(days=60)
    decision = allowed(paris(2026, 7, 1, 11, 0), refusals=[refused])
    assert decision.reason is Refusal.CONSUMER_REFUSED
    assert decision.next_allowed_at is not None
    assert allowed(paris(2026, 8, 3, 11, 0), refusals=[refused]).allowed


def test_refusal_blocks_for_good_from_the_optin_regime() -> None:
    refused = paris(2026, 8, 11, 11, 0)
    assert refusal_blocks_until(refused, RULES) is None
    decision = allowed(paris(2027, 11, 24, 11, 0), refusals=[refused])
    assert decision.reason is Refusal.CONSUMER_REFUSED
    assert decision.next_allowed_at is None


def test_refusal_is_not_lifted_by_exemptions() -> None:
    now = paris(2026, 11, 24, 11, 0)
    decision = allowed(
        now, refusals=[now - timedelta(hours=1)], own_request_at=now - timedelta(hours=2)
    )
    assert decision.reason is Refusal.CONSUMER_REFUSED


def test_answering_the_consumers_own_request_is_exempt_from_hours() -> None:
    saturday = paris(2026, 11, 28, 11, 0)
    decision = allowed(saturday, own_request_at=saturday - timedelta(hours=2))
    assert decision.allowed
    assert decision.exemption is Exemption.OWN_REQUEST
    # Only shortly after the request (48 h by default).
    late = allowed(saturday, own_request_at=saturday - timedelta(hours=49))
    assert late.reason is Refusal.WEEKEND
    strict = CallingRules(own_request_exempt=False)
    assert not allowed(saturday, rules=strict, own_request_at=saturday).allowed


def test_a_requested_slot_is_exempt_from_hours() -> None:
    evening = paris(2026, 11, 24, 20, 30)
    slot = RequestedSlot(
        start=paris(2026, 11, 24, 20, 15),
        end=paris(2026, 11, 24, 21, 0),
        requested_at=paris(2026, 11, 23, 15, 0),
    )
    decision = allowed(evening, requested_slot=slot)
    assert decision.allowed
    assert decision.exemption is Exemption.REQUESTED_SLOT
    assert not allowed(paris(2026, 11, 24, 21, 5), requested_slot=slot).allowed


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        allowed(datetime(2026, 11, 24, 11, 0))


def test_overseas_numbers_use_their_own_time_zone_and_holidays() -> None:
    assert consumer_zone("+33612345678") is None
    assert consumer_zone("+262692123456") == ("Indian/Reunion", "974")
    assert consumer_zone("+262639123456") == ("Indian/Mayotte", "976")
    reunion = rules_for_phone(RULES, "+262692123456")
    assert rules_for_phone(RULES, "+33612345678") is RULES
    # 11:00 in Paris (winter) is 14:00 in Réunion: allowed there, as is 08:00 Paris = 11:00.
    assert allowed(paris(2026, 11, 24, 8, 0), rules=reunion).allowed
    assert not allowed(paris(2026, 11, 24, 8, 0)).allowed
    # 17:30 in Paris is 20:30 in Réunion: refused there.
    assert allowed(paris(2026, 11, 24, 17, 30)).allowed
    assert allowed(paris(2026, 11, 24, 17, 30), rules=reunion).reason is Refusal.OUTSIDE_HOURS
    # 20 December (abolition of slavery) is a holiday in Réunion only.
    assert allowed(paris(2027, 12, 20, 8, 0), rules=reunion).reason is Refusal.PUBLIC_HOLIDAY
    martinique = rules_for_phone(RULES, "+596696123456")
    # 15:00 Paris (winter) is 10:00 in Martinique: the window just opened.
    assert allowed(paris(2026, 11, 24, 15, 0), rules=martinique).allowed
    assert not allowed(paris(2026, 11, 24, 14, 59), rules=martinique).allowed
