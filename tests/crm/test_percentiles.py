"""Nearest-rank percentiles from the minute histogram equal a brute-force reference."""

from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from crm.sla.percentiles import PERCENTILES, brute_force, from_histogram, minutes_of


def reference(values: list[int], p: float) -> int:
    """The smallest observed value with at least p of all values at or below it (exact)."""
    share = Fraction(str(p))
    for candidate in sorted(set(values)):
        if Fraction(sum(1 for value in values if value <= candidate), len(values)) >= share:
            return candidate
    raise AssertionError("unreachable")


def test_random_data_matches_the_brute_force_reference() -> None:
    generator = random.Random(20261127)
    for _ in range(200):
        size = generator.randint(1, 400)
        seconds = [int(generator.expovariate(1 / 1800)) for _ in range(size)]
        minutes = [minutes_of(value) for value in seconds]
        histogram = Counter(minutes)
        expected = [reference(minutes, p) for p in PERCENTILES]
        assert from_histogram(histogram) == expected
        assert brute_force(minutes) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=100_000), min_size=1, max_size=200))
def test_any_data_matches_the_reference(values: list[int]) -> None:
    assert from_histogram(Counter(values)) == [reference(values, p) for p in PERCENTILES]


def test_small_cases_and_minutes() -> None:
    assert from_histogram({}) == []
    assert from_histogram({7: 1}) == [7, 7, 7]
    assert from_histogram(Counter(range(1, 11))) == [5, 9, 10]  # 10 values: ranks 5, 9, 10
    assert from_histogram(Counter(range(1, 101))) == [50, 90, 95]
    assert [minutes_of(s) for s in (0, 1, 59, 60, 61, 900, 901)] == [0, 1, 1, 1, 2, 15, 16]
    assert math.isclose(PERCENTILES[2], 0.95)
