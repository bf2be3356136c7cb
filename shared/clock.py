"""Time source: always timezone-aware UTC. Processes take a ``Clock`` at start-up (the runtime
holds it) so tests move time instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def in_utc(clock: Clock) -> Clock:
    """``clock`` answering in UTC whatever zone it answers in (a test's Paris clock): the instants
    a service stores, answers and publishes are UTC, as they are in production."""
    if clock is utcnow:
        return clock

    def now() -> datetime:
        return clock().astimezone(UTC)

    return now
