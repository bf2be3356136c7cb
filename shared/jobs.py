"""Periodic jobs run by a worker beside its consumers (retention purges, …)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from shared.aio import sleep_or_stop
from shared.redact import safe_error_text

log = structlog.get_logger(__name__)


class PeriodicJob:
    """Calls ``action`` every ``interval_s`` seconds (first call after ``initial_delay_s``).

    The action decides itself whether work is due (e.g. from its last evidence record), so a
    restart or a second replica does not run a daily job twice in a day.
    """

    def __init__(
        self,
        *,
        name: str,
        action: Callable[[], Awaitable[None]],
        interval_s: float,
        initial_delay_s: float = 5.0,
    ) -> None:
        self.name = name
        self._action = action
        self._interval_s = interval_s
        self._initial_delay_s = initial_delay_s

    async def run(self, stop: asyncio.Event) -> None:
        await sleep_or_stop(stop, self._initial_delay_s)
        while not stop.is_set():
            try:
                await self._action()
            except Exception as exc:
                log.error("job.failed", job=self.name, error=safe_error_text(exc))
            await sleep_or_stop(stop, self._interval_s)
