"""Time source: always timezone-aware UTC. Processes take a ``Clock`` at start-up (the runtime
holds it) so tests move time instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
