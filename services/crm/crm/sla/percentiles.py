"""Percentiles by nearest rank, from a histogram of whole minutes (what the database returns) or
from raw values (the brute-force reference the tests compare against).

Nearest rank: the p-th percentile is the smallest value v such that at least ``ceil(p * n)`` of
the n values are ≤ v. It is always an observed value (no interpolation), so a histogram of the
exact values gives the exact answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

PERCENTILES: tuple[float, ...] = (0.5, 0.9, 0.95)


def minutes_of(business_s: int) -> int:
    """Business seconds to the whole minutes the SLA reports ("answered within n minutes")."""
    return -(-business_s // 60)


def rank(p: float, count: int) -> int:
    return max(1, math.ceil(p * count - 1e-9))


def from_histogram(histogram: Mapping[int, int], ps: Sequence[float] = PERCENTILES) -> list[int]:
    """Nearest-rank percentiles of a ``value → count`` histogram ([] when empty)."""
    total = sum(histogram.values())
    if total == 0:
        return []
    wanted = [rank(p, total) for p in ps]
    results: list[int | None] = [None] * len(ps)
    cumulative = 0
    for value in sorted(histogram):
        cumulative += histogram[value]
        for index, needed in enumerate(wanted):
            if results[index] is None and cumulative >= needed:
                results[index] = value
    return [value for value in results if value is not None]


def brute_force(values: Iterable[int], ps: Sequence[float] = PERCENTILES) -> list[int]:
    """Reference: sort everything and index by rank."""
    ordered = sorted(values)
    if not ordered:
        return []
    return [ordered[rank(p, len(ordered)) - 1] for p in ps]
