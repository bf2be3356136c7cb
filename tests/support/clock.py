"""A clock the tests move, and the moment most tests start at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# A Tuesday, inside the stores' and the call centre's hours and the legal calling window.
TUESDAY_11H = datetime(2026, 11, 24, 11, 0, tzinfo=PARIS)


@dataclass
class Clock:
    """Callable as a ``shared.clock.Clock``; ``advance`` moves it."""

    now: datetime = TUESDAY_11H

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now
