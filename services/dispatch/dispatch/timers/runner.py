"""The timer worker: fires due timers, each in its own transaction with its effects.

The worker's loop (``TimerLoop``) sleeps until the earliest pending timer falls due (bounded by
``DISPATCH_TIMER_POLL_INTERVAL_S``), and wakes when a timer is scheduled sooner (in this process
once the scheduling transaction commits, told when it falls due: ``dispatch.timers.hint``; from
another process through ``shared.db.wakeup``, then it reads the earliest due time).

A timer is claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL), applied, and marked
fired in the same transaction: with two replicas each timer is fired by exactly one of them; a
crash before the commit rolls everything back and the timer stays due (nothing missed); a
restarted worker picks up timers that fell due while it was down.

What a timer does is not the runner's business: the worker's wiring hands it one handler per
kind (``dispatch.assignments.deadlines.timer_handlers``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.metrics import DispatchMetrics
from dispatch.models import Timer
from dispatch.settings import DispatchSettings
from dispatch.timers.hint import DueHint
from dispatch.timers.kinds import TimerKind, TimerOutcome
from dispatch.timers.repository import TimerRepository
from shared.clock import Clock, utcnow
from shared.db.session import SessionFactory, read_only, session_scope
from shared.redact import safe_error_text

log = structlog.get_logger(__name__)

_RETRY_FAILED = timedelta(minutes=1)

# Applies one due timer in the caller's transaction, at ``now``; returns its outcome (stored on
# the timer row and counted in the metrics).
TimerHandler = Callable[[AsyncSession, Timer, datetime], Awaitable[TimerOutcome]]


class TimerRunner:
    def __init__(
        self,
        session_factory: SessionFactory,
        settings: DispatchSettings,
        handlers: Mapping[TimerKind, TimerHandler],
        *,
        clock: Clock = utcnow,
        name: str = "dispatch.timers",
        metrics: DispatchMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._session_factory = session_factory
        self._settings = settings
        self._handlers = handlers
        self._clock = clock
        self.name = name

    async def fire_due(self, limit: int | None = None) -> int:
        """Fire due timers one by one (up to ``limit``); returns how many fired."""
        fired = 0
        for _ in range(limit or self._settings.timer_batch_size):
            outcome = await self.fire_one()
            if outcome is None:
                break
            fired += 1
        return fired

    async def next_due(self) -> datetime | None:
        """When the earliest pending timer falls due (None: none pending)."""
        async with read_only(self._session_factory) as session:
            return await TimerRepository(session).earliest_due()

    async def fire_one(self) -> TimerOutcome | Literal["failed"] | None:
        """Fire the oldest due timer; None when none is due, ``failed`` when its effects raised
        (rolled back, the timer postponed)."""
        now = self._clock()
        outcome: TimerOutcome
        failed: int | None = None
        try:
            async with session_scope(self._session_factory) as session:
                timer = await TimerRepository(session).claim_one(now)
                if timer is None:
                    return None
                failed = timer.id
                handler = self._handlers.get(timer.kind)
                outcome = "unknown_kind" if handler is None else await handler(session, timer, now)
                timer.fired_at = now
                timer.fired_by = self.name
                timer.outcome = outcome
                timer_id, kind = timer.id, timer.kind
        except Exception as exc:
            if failed is None:
                raise
            log.error("dispatch.timer_failed", timer_id=failed, error=safe_error_text(exc))
            await self._postpone(failed)
            return "failed"
        log.info("dispatch.timer_fired", timer_id=timer_id, kind=kind, outcome=outcome)
        if self._metrics is not None:
            self._metrics.timers_fired.labels(self._metrics.service, kind, outcome).inc()
        return outcome

    async def _postpone(self, timer_id: int) -> None:
        """A timer whose effects failed is retried later (never dropped)."""
        async with session_scope(self._session_factory) as session:
            timer = await TimerRepository(session).get(timer_id)
            if timer is not None and timer.fired_at is None:
                timer.due_at = self._clock() + _RETRY_FAILED


# Due rows a pass could not claim are another replica's (SKIP LOCKED): it fires them, and the
# loop must not spin until that replica commits.
HELD_ELSEWHERE_S = 1.0
# Timers written by other processes (the API's call-backs, other replicas) are read at most this
# long after their wake-up, and at most once per this long.
OTHERS_READ_AFTER_S = 1.0


class TimerLoop:
    """The timer loop's step: fire what is due, then sleep until the next due timer.

    It reads the earliest due time from the database only when it does not know it: at start,
    after firing, within ``OTHERS_READ_AFTER_S`` of a notification it did not cause (another
    process wrote timers, the wake-up connection reconnected; SQLite's watcher sees this
    process's commits too), and at least every ``timer_poll_interval_s`` (the fallback poll).
    Timers this process writes reach it as an in-process hint (``dispatch.timers.hint``): a
    lead's timers cost the loop no statement."""

    def __init__(
        self,
        runner: TimerRunner,
        hint: DueHint,
        settings: DispatchSettings,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,  # the real time its pauses last
    ) -> None:
        self._monotonic = monotonic
        self._runner = runner
        self._hint = hint
        self._settings = settings
        self._clock = clock
        self._known = False  # whether ``_next`` is what the database says (with the hints)
        self._next: datetime | None = None
        self._read_at = 0.0  # monotonic time of the last read
        self._poll_at = 0.0  # monotonic time of the next read (the fallback poll, or sooner)
        self._generation = hint.signal.generation
        self._own = hint.own_wakeups

    async def step(self) -> float:
        try:
            return await self._step()
        except BaseException:
            self._known = False  # the hint it took may be lost: read afresh next time
            raise

    async def _step(self) -> float:
        hinted = self._hint.take()
        if self._must_read():
            await self._read(hinted)
        elif hinted is not None:
            self._next = hinted if self._next is None else min(self._next, hinted)
        if self._until_next() > 0:
            return self._sleep(self._until_next())
        fired = await self._runner.fire_due()
        if fired >= self._settings.timer_batch_size:
            self._known = False
            return 0.0
        await self._read(self._hint.take())
        pause = self._until_next()
        return self._sleep(pause if fired else max(pause, HELD_ELSEWHERE_S))

    def _must_read(self) -> bool:
        generation, own = self._hint.signal.generation, self._hint.own_wakeups
        if generation - self._generation > own - self._own:
            # Another process wrote timers: read within a second, not once per lead of theirs
            # (no timer falls due within a second of being written).
            self._poll_at = min(self._poll_at, self._read_at + OTHERS_READ_AFTER_S)
        self._generation, self._own = generation, own
        return not self._known or self._monotonic() >= self._poll_at

    async def _read(self, hinted: datetime | None) -> None:
        """The earliest due time from the database (and the hint taken before the read: its
        commit may have come after the read's snapshot)."""
        due = await self._runner.next_due()
        self._next = due if hinted is None or (due is not None and due < hinted) else hinted
        self._known = True
        self._read_at = self._monotonic()
        self._poll_at = self._read_at + self._settings.timer_poll_interval_s

    def _until_next(self) -> float:
        poll = max(self._poll_at - self._monotonic(), 0.0)
        if self._next is None:
            return poll
        return min(max((self._next - self._clock()).total_seconds(), 0.0), poll)

    def _sleep(self, pause: float) -> float:
        self._hint.sleeping_until(self._clock() + timedelta(seconds=pause))
        return pause
