"""Dispatch's own background loops (durable timers, webhook delivery), run by the shared worker.

The shared ``Worker`` supervises ``EventConsumer`` objects (a name and ``run(stop)``); a loop
here subclasses it so the worker restarts it after a crash like any consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from shared.aio import sleep_or_stop
from shared.consumer import EventConsumer
from shared.redact import safe_error_text
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

Step = Callable[[], Awaitable[float]]  # one pass; returns the pause before the next


class BackgroundLoop(EventConsumer):
    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str,
        step: Step,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(
            service=runtime.settings.service_name,
            name=name,
            bus=runtime.bus,
            topics=[],
            handlers={},
            session_factory=runtime.session_factory,
            infra=runtime.infra,
            metrics=runtime.metrics,
        )
        self._step = step
        self._close = close

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    pause = await self._step()
                except Exception as exc:  # logged without values, retried after a pause
                    log.error("dispatch.loop_failed", loop=self.name, error=safe_error_text(exc))
                    pause = 5.0
                if pause > 0:
                    await sleep_or_stop(stop, pause)
        finally:
            if self._close is not None:
                await self._close()
