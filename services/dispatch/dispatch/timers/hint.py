"""The timer loop's in-process due-time hint: a unit of work that wrote timers tells this
process's loop, once it has committed, the earliest due time it wrote. The loop then knows
when to look next without asking the database after each lead.

Only a hint earlier than the loop's planned wake-up wakes it (most new timers fall due after
the ones it already waits for). Timers written by other processes still wake it through
``shared.db.wakeup`` (a notification the loop did not cause makes it read the earliest due time
from the database), and its fallback poll reads it anyway every ``timer_poll_interval_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.session import after_commit
from shared.db.wakeup import Signal, Wakeups

TIMER_CHANNEL = "timer"  # the table's name: the channel of its wake-ups

# The hint of each database this process has a timer loop on (none: nobody to tell).
_HINTS: WeakKeyDictionary[Wakeups, DueHint] = WeakKeyDictionary()


class DueHint:
    """The earliest due time written by this process since the loop last took it, and the
    wake-ups of the loop's signal that were the hint's own (not another process's commits)."""

    def __init__(self, signal: Signal) -> None:
        self.signal = signal
        self._earliest: datetime | None = None
        self._own = 0
        self._wake_at: datetime | None = None  # None: the loop is awake (looking)

    @property
    def own_wakeups(self) -> int:
        return self._own

    def wrote(self, due_at: datetime) -> None:
        """Committed timers fall due at ``due_at`` at the earliest."""
        if self._earliest is None or due_at < self._earliest:
            self._earliest = due_at
        if self._wake_at is None or due_at < self._wake_at:
            self._own += 1
            self.signal.notify()

    def take(self) -> datetime | None:
        """The earliest due time written since the last ``take`` (the loop is awake now)."""
        earliest, self._earliest = self._earliest, None
        self._wake_at = None
        return earliest

    def sleeping_until(self, wake_at: datetime) -> None:
        """The loop sleeps until ``wake_at``: an earlier timer wakes it."""
        self._wake_at = wake_at


def due_hint(wakeups: Wakeups) -> DueHint:
    """The hint of the timer loop of this database (the loop's wiring asks for it)."""
    hint = _HINTS.get(wakeups)
    if hint is None:
        hint = _HINTS[wakeups] = DueHint(wakeups.signal(TIMER_CHANNEL))
    return hint


@dataclass
class _Written:
    """The earliest due time of the timers one unit of work wrote."""

    session: AsyncSession
    hint: DueHint
    due_at: datetime

    async def tell(self) -> None:
        self.session.info.pop(_WRITTEN, None)  # the session's next unit of work starts afresh
        self.hint.wrote(self.due_at)


_WRITTEN = "dispatch.timers_written"


def tell_after_commit(session: AsyncSession, due_at: datetime) -> None:
    """Once ``session``'s unit of work has committed, tell this process's timer loop (if it has
    one) that timers fall due at ``due_at`` at the earliest."""
    written = session.info.get(_WRITTEN)
    if isinstance(written, _Written):
        written.due_at = min(written.due_at, due_at)
        return
    hint = next(
        (_HINTS.get(value) for value in session.info.values() if isinstance(value, Wakeups)),
        None,
    )
    if hint is None:
        return  # no timer loop in this process: other processes' loops are notified anyway
    written = session.info[_WRITTEN] = _Written(session, hint, due_at)
    after_commit(session, written.tell)
