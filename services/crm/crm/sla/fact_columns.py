"""The crm API's columnar copy of ``sla_fact`` (PostgreSQL): what the summary reads at 1 M facts.

An exact percentile needs every value of its group: PostgreSQL sorts about 4 M values a second
here, so a year of 1 M leads (16 duration columns) cannot be summarised in 0.5 s from the table.
NumPy does the same work 10-20x faster on arrays held in memory, so each API process keeps the
facts as arrays (about 150 bytes a lead: 150 MB at 1 M) and follows the table's changes:

- every row has a number for life (``fact_no``, its slot in the arrays) and the transaction that
  last wrote it (``changed_xid``; migration ``sla fact changes``);
- a refresh, before each summary, opens a REPEATABLE READ transaction, notes its snapshot's
  ``xmin`` and reads, by index, the rows written by transactions from the previous ``xmin`` on.
  Every transaction that committed after the previous snapshot has an id at least that ``xmin``,
  so nothing is missed; a row read twice is written twice (idempotent);
- the rows come as a binary ``COPY`` of fixed-width integers (dimensions as codes of this copy's
  dictionaries), parsed by NumPy without a Python object per value, so the first load of 1 M facts
  takes seconds, not minutes;
- facts are never deleted by the services; a DELETE or TRUNCATE (by hand, by tests) moves
  ``sla_fact_generation``, and the copy reloads.

Durations are kept as the whole minutes the summary reads (-1: none). Other values missing in the
table are sentinels: ``NULL_INT`` for a price, ``NO_INSTANT`` for an instant that is absent
(``-infinity``), ``NEVER`` for a deadline that is absent (``infinity``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import structlog
from numpy.typing import NDArray
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm.sla.repository import GROUP_COLUMNS
from crm.sla.stages import STAGES, STAGES_BY_NAME

log = structlog.get_logger(__name__)

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


def _minutes_sql(column: str) -> str:
    """Whole minutes as the database's summary computes them (``(s + 59) / 60``, integer
    division), -1 when missing."""
    return f"coalesce((f.{column} + 59) / 60, -1)"


def _flags_sql(targets_s: Mapping[str, int]) -> str:
    durations = ", ".join(
        f"f.{column}" for stage in STAGES for column in (stage.business_column, stage.wall_column)
    )
    terms = [
        f"CASE WHEN f.won_at IS NOT NULL THEN {WON} ELSE 0 END",
        f"CASE WHEN f.closed_at IS NOT NULL THEN {CLOSED} ELSE 0 END",
        f"CASE WHEN least({durations}) < 0 THEN {NEGATIVE} ELSE 0 END",
    ]
    for index, (name, target_s) in enumerate(targets_s.items()):
        stage = STAGES_BY_NAME[name]
        terms.append(
            f"CASE WHEN f.{stage.business_column} > {int(target_s)}"
            f" THEN {late_bit(index)} ELSE 0 END"
        )
        terms.append(
            f"CASE WHEN f.{stage.start_column} IS NOT NULL AND f.{stage.end_column} IS NULL"
            f" AND f.closed_at IS NULL THEN {running_bit(index)} ELSE 0 END"
        )
    return " + ".join(f"({term})" for term in terms)


class Layout:
    """The columns of the copy, their SQL, and the binary record of the COPY that carries them.
    ``targets_s``: the stages with a target and their targets in business seconds (the policy's,
    fixed for the process): their late and running bits, deadlines and at-risk instants."""

    def __init__(self, targets_s: Mapping[str, int]) -> None:
        self.targets_s = dict(targets_s)
        # (name, SQL over sla_fact f and the dictionaries d_<dimension>, NumPy type)
        columns: list[tuple[str, str, str]] = [
            ("fact_no", "f.fact_no", "i8"),
            ("received", "coalesce(f.received_at, '-infinity')", "i8"),
        ]
        columns += [(name, f"coalesce(d_{name}.code::int4 - 1, -1)", "i4") for name in DIMENSIONS]
        columns.append(("price", f"coalesce(f.sale_price_eur, {NULL_INT})", "i4"))
        columns.append(("flags", f"({_flags_sql(self.targets_s)})::int4", "i4"))
        for stage in STAGES:
            columns.append((f"{stage.name}__business", _minutes_sql(stage.business_column), "i4"))
            columns.append((f"{stage.name}__wall", _minutes_sql(stage.wall_column), "i4"))
        for name in self.targets_s:
            stage = STAGES_BY_NAME[name]
            columns.append((f"{name}__due", _deadline(stage.due_column), "i8"))
            columns.append((f"{name}__risk", _deadline(stage.risk_column), "i8"))
        self.columns = columns
        fields: list[tuple[str, str]] = [("_count", ">i2")]
        for name, _, kind in columns:
            fields += [(f"_{name}_length", ">i4"), (name, f">{kind}")]
        self.record = np.dtype(fields)
        joins = " ".join(
            f"LEFT JOIN unnest(${index}::text[]) WITH ORDINALITY AS d_{name}(value, code)"
            f" ON d_{name}.value = f.{column}"
            for index, (name, column) in enumerate(DIMENSIONS.items(), start=1)
        )
        selected = ", ".join(sql for _, sql, _ in columns)
        since = len(DIMENSIONS) + 1
        self.copy_query = (
            f"SELECT {selected} FROM sla_fact f {joins} WHERE f.changed_xid >= ${since}::int8"
        )


def _deadline(column: str) -> str:
    return f"coalesce(f.{column}, 'infinity')"


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


class CopyParser:
    """Parses PostgreSQL's binary COPY stream (a header, fixed-width records, a trailer) chunk by
    chunk, into NumPy records handed to ``sink`` a batch at a time."""

    _SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
    _BATCH = 8 << 20  # bytes parsed at once: bounded memory for a first load of 1 M facts

    def __init__(self, layout: Layout, sink: FactColumns) -> None:
        self.layout = layout
        self.sink = sink
        self.pending = bytearray()
        self.header_seen = False
        self.rows = 0

    async def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        if len(self.pending) >= self._BATCH:
            self._parse()

    def finish(self) -> int:
        self._parse()
        if bytes(self.pending) != b"\xff\xff":
            raise ValueError("the COPY stream did not end with its trailer")
        return self.rows

    def _parse(self) -> None:
        if not self.header_seen:
            if len(self.pending) < 19:
                return
            if bytes(self.pending[:11]) != self._SIGNATURE:
                raise ValueError("not a binary COPY stream")
            extension = int.from_bytes(self.pending[15:19], "big")
            del self.pending[: 19 + extension]
            self.header_seen = True
        size = self.layout.record.itemsize
        whole = max(0, (len(self.pending) - 2) // size)  # the last 2 bytes may be the trailer
        if not whole:
            return
        records = np.frombuffer(bytes(self.pending[: whole * size]), dtype=self.layout.record)
        expected = len(self.layout.columns)
        if not (records["_count"] == expected).all():
            raise ValueError("a COPY record has an unexpected number of fields")
        self.sink.apply(records)
        self.rows += whole
        del self.pending[: whole * size]


_SNAPSHOT = text(
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,"
    " (SELECT generation FROM sla_fact_generation WHERE id = 1) AS generation"
)


def _changed_dimensions() -> Any:
    """How many rows changed, and the dimension values among them: one scan, hashed per
    dimension by ``GROUPING SETS`` (a whole load of 1 M facts: about 0.5 s here, against 3 s for
    five ``array_agg(DISTINCT …)``, which sort). ``set`` is the ``GROUPING`` bit mask: 0 for the
    total, else which dimension the row's value is of."""
    columns = ", ".join(DIMENSIONS.values())
    sets = ", ".join(["()", *(f"({column})" for column in DIMENSIONS.values())])
    return text(
        f"SELECT GROUPING({columns}) AS set, {columns}, count(*) AS n FROM sla_fact"
        f" WHERE changed_xid >= :since GROUP BY GROUPING SETS ({sets})"
    )


_CHANGED = _changed_dimensions()
_ALL_SETS = (1 << len(DIMENSIONS)) - 1


def _grouping_bit(position: int) -> int:
    """``GROUPING(a, b, …)`` has a bit set for each argument *not* grouped, the first
    argument the highest: the row of dimension ``position`` has every bit but its own."""
    return _ALL_SETS & ~(1 << (len(DIMENSIONS) - 1 - position))


class SlaFactCopy:
    """One process's copy of the facts, brought up to date before each read (``current``)."""

    def __init__(self, engine: AsyncEngine, targets_s: Mapping[str, int]) -> None:
        self.engine = engine
        self.layout = Layout(targets_s)
        self.columns = FactColumns(self.layout)
        self._xmin = 0
        self._generation: object = _UNLOADED
        self._lock = asyncio.Lock()
        self.loads = 0  # whole loads (the first, and after a DELETE or TRUNCATE)
        self.rows_read = 0  # rows read since this copy was made (loads and refreshes)

    async def warm(self) -> None:
        """Load the copy ahead of the first summary (started with the API: a first load of 1 M
        facts takes seconds). A failure is logged; the first summary tries again."""
        started = time.perf_counter()
        try:
            await self.read(_nothing)
        except Exception as error:  # logged; the next read loads again
            log.warning("sla.copy_load_failed", error_type=type(error).__name__)
            return
        log.info(
            "sla.copy_loaded",
            facts=int(self.columns.present.sum()),
            seconds=round(time.perf_counter() - started, 2),
        )

    async def read(self, compute: Callable[[FactColumns], ResultT]) -> ResultT:
        """``compute`` over the copy as of a snapshot taken now (every fact committed before this
        call), in a thread: NumPy releases the GIL, the event loop keeps serving. The copy is
        not changed meanwhile (one refresh or read at a time)."""
        async with self._lock:
            try:
                await self._refresh()
            except BaseException:
                self._generation = _UNLOADED  # a half-applied refresh: load again next time
                raise
            return await asyncio.to_thread(compute, self.columns)

    async def _refresh(self) -> None:
        async with self.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
            async with connection.begin():
                snapshot = (await connection.execute(_SNAPSHOT)).one()
                if snapshot.generation != self._generation or self._generation is _UNLOADED:
                    self.columns = FactColumns(self.layout)
                    self._xmin = 0
                    self.loads += 1
                await self._read_changes(connection, self._xmin)
                self._xmin = int(snapshot.xmin)
                self._generation = snapshot.generation

    async def _read_changes(self, connection: AsyncConnection, since: int) -> None:
        changed = 0
        values: dict[str, list[str]] = {name: [] for name in DIMENSIONS}
        for row in (await connection.execute(_CHANGED, {"since": since})).all():
            if row.set == _ALL_SETS:
                changed = int(row.n)
                continue
            for position, (name, column) in enumerate(DIMENSIONS.items()):
                value = getattr(row, column)
                if row.set == _grouping_bit(position) and value is not None:
                    values[name].append(value)
        if not changed:
            return
        for name in DIMENSIONS:
            self.columns.learn(name, values[name])
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        parser = CopyParser(self.layout, self.columns)
        dictionaries = [self.columns.values[name] for name in DIMENSIONS]
        await driver.copy_from_query(
            self.layout.copy_query, *dictionaries, since, output=parser.feed, format="binary"
        )
        self.rows_read += parser.finish()


_UNLOADED = object()


def _nothing(columns: FactColumns) -> None:
    return None


ResultT = TypeVar("ResultT")
