"""The summary's aggregates over the columnar copy of the facts (crm/sla/fact_copy/).

Returns the rows ``SlaRepository.stage_summaries_postgres`` returns, with the same meaning:
per group the leads, outcomes, and per stage the count of ended stages, the nearest-rank
percentiles of whole minutes (``percentile_disc``: the value at rank ``ceil(p·n)``), late, and for
stages with a target the open ones overdue or at risk at ``now``. ``tests/crm/test_fact_copy.py``
compares both on random facts.

Grouped percentiles sort each column once, keyed by (group, minutes + 1) in one integer, a
missing value being 0 so it sorts first in its group: each group's values are then one sorted
run, found by binary search, whatever the number of groups. The columns are ranked on two
threads (NumPy's sort releases the GIL).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crm.sla.fact_copy.columns import (
    CLOSED,
    NEGATIVE,
    NEVER,
    NULL_INT,
    WON,
    FactColumns,
    instant,
    late_bit,
    running_bit,
)
from crm.sla.percentiles import PERCENTILES
from crm.sla.repository import Filters
from crm.sla.stages import STAGES

Rows = dict[str | None, dict[str, Any]]
_RANKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sla-ranks")


class NotExact(Exception):
    """The copy cannot give the database's figures for this request (a negative duration,
    targets other than the copy's): the caller asks the database."""


def summary_rows(
    columns: FactColumns,
    filters: Filters,
    group_by: str | None,
    targets_s: Mapping[str, int],
    now: datetime,
) -> Rows:
    if dict(targets_s) != columns.layout.targets_s:
        raise NotExact("targets differ from the copy's")
    used = columns.used
    arrays = {name: array[:used] for name, array in columns.arrays.items()}
    received = arrays["received"]
    chosen = (
        columns.present[:used]
        & (received >= instant(filters.start))
        & (received < instant(filters.end))
    )
    for dimension, value in filters.dimensions.items():
        code = columns.codes[dimension].get(value)
        if code is None:
            return {}
        chosen &= arrays[dimension] == code
    selected = int(np.count_nonzero(chosen))
    if not selected:
        return {}
    # Most of the facts: every slot, the others in one extra group left out at the end (no copy
    # of 30 columns). A smaller part: gathered first, so the sorts are smaller too.
    everything = selected * 2 >= chosen.size
    if not everything:
        rows = np.flatnonzero(chosen)
        arrays = {name: array[rows] for name, array in arrays.items()}
    flags = arrays["flags"]
    if (flags & NEGATIVE).any():
        raise NotExact("a negative duration")
    keys: list[str | None]
    if group_by is None:
        keys = ["all"]
        groups = np.zeros(flags.size, dtype=np.int32)
    else:
        keys = [None, *columns.values[group_by]]
        groups = arrays[group_by] + 1  # a missing dimension (-1) → 0
    count = len(keys)
    if everything and selected < chosen.size:
        groups = np.where(chosen, groups, np.int32(count))
        count += 1  # the group of the slots not chosen

    def tally(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        if count == 1:
            return np.array([np.count_nonzero(mask)])
        return np.bincount(groups[mask], minlength=count)

    price = arrays["price"]
    priced = price != NULL_INT
    figures: dict[str, NDArray[Any]] = {
        "leads": np.bincount(groups, minlength=count),
        "won": tally((flags & WON) != 0),
        "closed": tally((flags & CLOSED) != 0),
        "priced": tally(priced),
        "revenue": np.bincount(groups[priced], weights=price[priced], minlength=count),
    }
    now_instant = instant(now)
    for index, name in enumerate(columns.layout.targets_s):
        figures[f"{name}__late"] = tally((flags & late_bit(index)) != 0)
        running = (flags & running_bit(index)) != 0
        due = arrays[f"{name}__due"]
        risk = arrays[f"{name}__risk"]
        figures[f"{name}__overdue"] = tally(running & (due <= now_instant))
        figures[f"{name}__at_risk"] = tally(
            running & (risk <= now_instant) & (due > now_instant) & (due != NEVER)
        )
    ranker = _Ranker(groups, count, columns.minutes_bits)
    names = [f"{stage.name}__{clock}" for stage in STAGES for clock in ("business", "wall")]
    ranked = dict(
        zip(names, _RANKERS.map(lambda name: ranker.rank(arrays[name]), names), strict=True)
    )
    result: Rows = {}
    for group in np.flatnonzero(figures["leads"][: len(keys)]).tolist():
        row: dict[str, Any] = {name: int(values[group]) for name, values in figures.items()}
        row["revenue"] = row["revenue"] if row["priced"] else None
        for stage in STAGES:
            sizes, business = ranked[f"{stage.name}__business"]
            row[f"{stage.name}__count"] = int(sizes[group])
            row[f"{stage.name}__percentiles"] = business[group]
            row[f"{stage.name}__wall_percentiles"] = ranked[f"{stage.name}__wall"][1][group]
        result[keys[group]] = row
    return result


class _Ranker:
    """Nearest-rank percentiles of whole-minute columns (-1: missing) per group."""

    def __init__(self, groups: NDArray[np.int32], count: int, minutes_bits: int) -> None:
        self.count = count
        self.bits = minutes_bits + 1  # minutes + 1, 0 for a missing value
        wide = self.bits + max(count - 1, 1).bit_length() > 31
        self.kind: type[np.signedinteger[Any]] = np.int64 if wide else np.int32
        self.shifted = np.left_shift(groups.astype(self.kind), self.bits) if count > 1 else None
        edges = np.arange(count + 1, dtype=np.int64) << self.bits
        self.starts = edges[:-1] + 1  # first present value of each group
        self.ends = edges[1:]

    def rank(self, minutes: NDArray[np.int32]) -> tuple[NDArray[np.int64], list[list[int] | None]]:
        """Per group: how many values, and their percentiles (None: no value)."""
        if self.shifted is None:  # one group: a selection, no sort
            present = minutes[minutes >= 0]
            sizes = np.array([present.size], dtype=np.int64)
            if not present.size:
                return sizes, [None]
            at = [_rank(p, present.size) for p in PERCENTILES]
            picked = np.partition(present, sorted(set(at)))
            return sizes, [[int(picked[position]) for position in at]]
        keys = self.shifted | (minutes + 1).astype(self.kind)
        keys.sort()
        first = np.searchsorted(keys, self.starts)
        sizes = np.searchsorted(keys, self.ends) - first
        found: list[list[int] | None] = [None] * self.count
        ranked = np.flatnonzero(sizes)
        if not ranked.size:
            return sizes, found
        mask = (1 << self.bits) - 1
        starts, counts = first[ranked], sizes[ranked]
        picks = [
            (keys[starts + np.maximum(np.ceil(p * counts), 1).astype(np.int64) - 1] & mask) - 1
            for p in PERCENTILES
        ]
        for position, group in enumerate(ranked.tolist()):
            found[group] = [int(values[position]) for values in picks]
        return sizes, found


def _rank(fraction: float, size: int) -> int:
    """``percentile_disc``'s row: the ``ceil(fraction · size)``-th value (the first if 0)."""
    return max(int(np.ceil(fraction * size)), 1) - 1
