"""The arrays of the copy, one slot per ``fact_no``, and the values they hold: sentinels of the
missing values, the bits of ``flags``, instants on PostgreSQL's scale."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from crm.sla.repository import GROUP_COLUMNS

if TYPE_CHECKING:
    from crm.sla.fact_copy.repository import Layout

NULL_INT = int(np.iinfo(np.int32).min)
NO_INSTANT = int(np.iinfo(np.int64).min)  # PostgreSQL's binary -infinity
NEVER = int(np.iinfo(np.int64).max)  # PostgreSQL's binary infinity

# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

DIMENSIONS = GROUP_COLUMNS  # the summary's group_by names → columns of sla_fact

# Bits of ``flags``: the outcomes, whether any duration of the row is negative (never written by
# the worker, which measures from a stage's start; the copy then defers to the database), and per
# stage with a target whether it ended late and whether it runs (started, not ended, lead open).
WON = 1
CLOSED = 2
NEGATIVE = 4


def late_bit(index: int) -> int:
    return 1 << (3 + 2 * index)


def running_bit(index: int) -> int:
    return 1 << (4 + 2 * index)


def instant(moment: datetime) -> int:
    """A UTC instant on the copy's scale (microseconds from 2000-01-01, as PostgreSQL stores)."""
    return (moment - _PG_EPOCH) // _MICROSECOND


class FactColumns:
    """The arrays, one slot per ``fact_no`` (``used``: one past the highest), and the
    dictionaries of the dimensions."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.capacity = 0
        self.used = 0
        self.minutes_bits = 1  # enough bits for every duration in minutes seen so far
        self.present: NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self.arrays: dict[str, NDArray[Any]] = {
            name: np.zeros(0, dtype=kind) for name, _, kind in layout.columns if name != "fact_no"
        }
        self.minute_columns = [
            name for name, _, _ in layout.columns if name.endswith(("__business", "__wall"))
        ]
        self.values: dict[str, list[str]] = {name: [] for name in DIMENSIONS}  # code → value
        self.codes: dict[str, dict[str, int]] = {name: {} for name in DIMENSIONS}

    def learn(self, dimension: str, values: Iterable[str]) -> None:
        """Give codes to the values not seen yet (codes are never reused)."""
        codes = self.codes[dimension]
        for value in values:
            if value not in codes:
                codes[value] = len(self.values[dimension])
                self.values[dimension].append(value)

    def apply(self, records: NDArray[Any]) -> None:
        """Write parsed COPY records into their slots."""
        if not len(records):
            return
        slots = records["fact_no"].astype(np.int64)
        highest = int(slots.max())
        self._reserve(highest + 1)
        self.used = max(self.used, highest + 1)
        self.present[slots] = True
        for name, array in self.arrays.items():
            array[slots] = records[name]
        longest = max(int(records[name].max()) for name in self.minute_columns)
        self.minutes_bits = max(self.minutes_bits, (longest + 1).bit_length())

    def _reserve(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        capacity = max(needed, self.capacity * 2, 1024)
        self.present = _grown(self.present, capacity, False)
        for name, array in self.arrays.items():
            self.arrays[name] = _grown(array, capacity, 0)
        self.capacity = capacity


def _grown(array: NDArray[Any], capacity: int, fill: Any) -> NDArray[Any]:
    grown = np.full(capacity, fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown
