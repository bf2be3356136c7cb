"""Periodic jobs run by a worker beside its consumers (retention purges, …)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from shared.aio import sleep_or_stop
from shared.db.wakeup import Signal
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

    @property
    def interval_s(self) -> float:
        return self._interval_s

    async def run(self, stop: asyncio.Event) -> None:
        await sleep_or_stop(stop, self._initial_delay_s)
        while not stop.is_set():
            try:
                await self._action()
            except Exception as exc:
                log.error("job.failed", job=self.name, error=safe_error_text(exc))
            await sleep_or_stop(stop, self._interval_s)


Step = Callable[[], Awaitable[float]]  # one pass; returns the pause before the next


class StepLoop:
    """Runs ``step`` again and again, pausing as long as the step asks (0: go on at once).

    For a service's own pollers (timers, webhook delivery, Graph API fetches, IMAP). With a
    ``wakeup`` signal the pause ends as soon as it is notified (new work was committed: see
    ``shared.db.wakeup``), so the pause is only a fallback. A failing step is logged without
    values and retried after a pause; ``close`` runs at the end.
    """

    def __init__(
        self,
        *,
        name: str,
        step: Step,
        close: Callable[[], Awaitable[None]] | None = None,
        pause_after_error_s: float = 5.0,
        wakeup: Signal | None = None,
    ) -> None:
        self.name = name
        self._step = step
        self._close = close
        self._pause_after_error_s = pause_after_error_s
        self._wakeup = wakeup

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                seen = self._wakeup.generation if self._wakeup is not None else 0
                try:
                    pause = await self._step()
                except Exception as exc:
                    log.error("loop.step_failed", loop=self.name, error=safe_error_text(exc))
                    await sleep_or_stop(stop, self._pause_after_error_s)
                    continue
                if pause > 0 and self._wakeup is not None:
                    await self._wakeup.wait(seen, pause, stop)
                elif pause > 0:
                    await sleep_or_stop(stop, pause)
                else:
                    await asyncio.sleep(0)  # let the others run between busy passes
        finally:
            if self._close is not None:
                await self._close()
