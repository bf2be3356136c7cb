"""A service's worker process: the outbox relay, the event consumers and periodic loops, run until
stopped; and the listener that wakes them when another process committed work for them
(``shared.db.wakeup``)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from prometheus_client import start_http_server

from shared.aio import sleep_or_stop
from shared.bus.factory import topic_specs
from shared.bus.protocol import BusUnavailable
from shared.clock import Clock, utcnow
from shared.db.infra import InfraTables
from shared.db.session import wakeups_of
from shared.db.wakeup import OUTBOX, ChangeListener
from shared.logging import configure_logging
from shared.metrics import ServiceMetrics
from shared.outbox import OutboxRelay
from shared.redact import safe_error_text
from shared.runtime import Runtime
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


class Loop(Protocol):
    """A long-running task of a worker: an event consumer or a periodic job."""

    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


ConsumerFactory = Callable[[Runtime[Any]], Sequence[Loop]]


class Worker:
    """Start with ``start()``, stop with ``stop()``; or ``run_forever()`` under signals."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        infra: InfraTables,
        consumers: ConsumerFactory,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._infra = infra
        self._consumer_factory = consumers
        self.metrics = ServiceMetrics(settings.service_name)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.runtime: Runtime[Any] | None = None
        self.listener: ChangeListener | None = None

    async def start(self) -> None:
        self.runtime = await Runtime.open(
            self.settings, self._infra, self.metrics, role="worker", clock=self._clock
        )
        try:
            # Built before any task starts: a wiring error stops the worker loudly.
            consumers = self._consumer_factory(self.runtime)
        except Exception:
            await self.runtime.close()
            self.runtime = None
            raise
        wakeups = wakeups_of(self.runtime.session_factory)
        relay = OutboxRelay(
            service=self.settings.service_name,
            session_factory=self.runtime.session_factory,
            table=self._infra.outbox_event,
            bus=self.runtime.bus,
            metrics=self.metrics,
            batch_size=self.settings.outbox_batch_size,
            poll_interval_s=self.settings.outbox_poll_interval_s,
            wakeup=wakeups.signal(OUTBOX),
            gauge_interval_s=self.settings.gauge_interval_s,
        )
        # After the loops asked for their channels: the listener watches those.
        self.listener = ChangeListener(
            self.settings.resolved_database_url(),
            wakeups,
            application_name=f"{self.settings.service_name}.worker.listen",
        )
        self._tasks.append(
            asyncio.create_task(self._supervise("wakeups", self.listener.run), name="wakeups")
        )
        self._tasks.append(
            asyncio.create_task(self._supervise("outbox-relay", relay.run), name="outbox-relay")
        )
        self._tasks.append(asyncio.create_task(self._run_consumers(consumers), name="consumers"))

    async def _run_consumers(self, consumers: Sequence[Loop]) -> None:
        await self._ensure_topics()
        async with asyncio.TaskGroup() as group:
            for consumer in consumers:
                group.create_task(
                    self._supervise(consumer.name, consumer.run), name=f"consumer:{consumer.name}"
                )

    async def _supervise(self, name: str, loop: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Run a loop until stop; a crash is logged and the loop restarted after a pause."""
        while not self._stop.is_set():
            try:
                await loop(self._stop)
            except Exception as exc:
                log.error("worker.loop_crashed", loop=name, error=safe_error_text(exc))
                await sleep_or_stop(self._stop, 1.0)

    async def _ensure_topics(self) -> None:
        """Create the catalogue's topics (retention set), retrying while the broker is down."""
        assert self.runtime is not None
        pause = 0.5
        while not self._stop.is_set():
            try:
                await self.runtime.bus.ensure_topics(topic_specs(self.settings))
                return
            except BusUnavailable as exc:
                log.warning("worker.topics_not_ready", error=safe_error_text(exc))
                await sleep_or_stop(self._stop, pause)
                pause = min(pause * 2, 5.0)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    async def run_forever(self) -> None:
        configure_logging(
            level=self.settings.log_level,
            json=self.settings.log_json,
            service=self.settings.service_name,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        if self.settings.worker_metrics_port is not None:
            start_http_server(
                self.settings.worker_metrics_port,
                addr=self.settings.http_host,
                registry=self.metrics.registry,
            )
        await self.start()
        log.info("worker.started")
        await self._stop.wait()
        await self.stop()
        log.info("worker.stopped")
