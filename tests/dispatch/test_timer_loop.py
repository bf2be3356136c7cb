"""The timer loop's reads of the earliest due time (``TimerLoop``), without a database: the hint
of this process's own timers, other processes' wake-ups (at most one read a second), the fallback
poll, and a read that failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from dispatch.timers.hint import DueHint
from dispatch.timers.runner import OTHERS_READ_AFTER_S, TimerLoop, TimerRunner
from shared.db.wakeup import Signal
from tests.dispatch.conftest import dispatch_settings

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class FakeRunner:
    def __init__(self) -> None:
        self.due: datetime | None = None
        self.reads = 0
        self.fails = False

    async def next_due(self) -> datetime | None:
        self.reads += 1
        if self.fails:
            raise ConnectionError("database gone")
        return self.due

    async def fire_due(self) -> int:
        return 0


class Moment:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts(tmp_path: Path) -> tuple[TimerLoop, FakeRunner, DueHint, Moment]:
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", timer_poll_interval_s=60
    )
    runner, hint, moment = FakeRunner(), DueHint(Signal()), Moment()
    loop = TimerLoop(cast(TimerRunner, runner), hint, settings, lambda: NOW, monotonic=moment)
    return loop, runner, hint, moment


async def test_own_timers_are_hints_and_the_poll_still_reads(
    parts: tuple[TimerLoop, FakeRunner, DueHint, Moment],
) -> None:
    loop, runner, hint, moment = parts
    assert await loop.step() == 60  # nothing pending: until the fallback poll
    assert runner.reads == 1
    generation = hint.signal.generation
    hint.wrote(NOW + timedelta(seconds=30))  # sooner than the loop's wake-up: woken
    assert hint.signal.generation == generation + 1
    assert await loop.step() == 30
    hint.wrote(NOW + timedelta(seconds=45))  # later: not woken
    assert hint.signal.generation == generation + 1
    assert await loop.step() == 30
    assert runner.reads == 1
    moment.now = 60.0  # the fallback poll: another replica's timer, no wake-up heard
    runner.due = NOW + timedelta(seconds=10)
    assert await loop.step() == 10
    assert runner.reads == 2


async def test_other_processes_timers_are_read_at_most_once_a_second(
    parts: tuple[TimerLoop, FakeRunner, DueHint, Moment],
) -> None:
    loop, runner, hint, moment = parts
    await loop.step()
    for _ in range(3):
        hint.signal.notify()  # as shared.db.wakeup does for another process's commit
        assert await loop.step() == OTHERS_READ_AFTER_S
    assert runner.reads == 1
    runner.due = NOW + timedelta(seconds=20)
    moment.now = OTHERS_READ_AFTER_S
    assert await loop.step() == 20
    assert runner.reads == 2


async def test_a_failed_read_is_made_again_the_timers_hint_with_it(
    parts: tuple[TimerLoop, FakeRunner, DueHint, Moment],
) -> None:
    loop, runner, hint, moment = parts
    await loop.step()
    moment.now = 61.0  # the fallback poll's read fails
    runner.fails = True
    hint.wrote(NOW + timedelta(seconds=5))
    with pytest.raises(ConnectionError):
        await loop.step()
    runner.fails = False
    runner.due = NOW + timedelta(seconds=5)  # the database knows it
    assert await loop.step() == 5
    assert runner.reads == 3
