"""One API process's copy of the facts, brought up to date before each read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.sla.fact_copy.columns import DIMENSIONS, FactColumns
from crm.sla.fact_copy.repository import FactCopyRepository, Layout

log = structlog.get_logger(__name__)
ResultT = TypeVar("ResultT")
_UNLOADED = object()


class SlaFactCopy:
    """One process's copy of the facts (package docstring: how it follows the table)."""

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
                repository = FactCopyRepository(connection)
                xmin, generation = await repository.snapshot()
                if generation != self._generation or self._generation is _UNLOADED:
                    self.columns = FactColumns(self.layout)
                    self._xmin = 0
                    self.loads += 1
                changed, values = await repository.changes(self._xmin)
                if changed:
                    for name in DIMENSIONS:
                        self.columns.learn(name, values[name])
                    self.rows_read += await repository.copy_changed(
                        self._xmin, self.layout, self.columns
                    )
                self._xmin = xmin
                self._generation = generation


def _nothing(columns: FactColumns) -> None:
    return None
