"""Repeated warnings and errors are summarised, not written again and again.

During a 31 s Kafka outage a worker once wrote 173,000 lines (26 MB): aiokafka logs every
reconnect attempt of every client, and the relay and consumers log every retry. Per key (our
event name, or a library logger and its message template) a few lines pass in each window; the
next line that passes after some were held back carries ``suppressed`` (how many). Info and
debug lines (the access log…) are never held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any

import structlog

_LIMITED_LEVELS = frozenset({"warning", "warn", "error", "exception", "critical", "fatal"})


class RepeatLimiter:
    """At most ``burst`` lines per key in each ``window_s``; counts what it holds back."""

    def __init__(
        self,
        *,
        burst: int = 5,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        # key -> [window start, lines passed in it, lines held back since the last one passed]
        self._state: dict[Hashable, list[float]] = {}

    def admit(self, key: Hashable) -> int | None:
        """None: hold this line back. Else it passes, and the result is how many lines of the
        key were held back before it."""
        now = self._clock()
        state = self._state.get(key)
        if state is None:
            if len(self._state) >= self._max_keys:
                self._state.clear()  # bounded memory whatever the keys
            state = self._state[key] = [now, 0, 0]
        if now - state[0] >= self._window_s:
            state[0], state[1] = now, 0
        if state[1] >= self._burst:
            state[2] += 1
            return None
        state[1] += 1
        held, state[2] = int(state[2]), 0
        return held


def structlog_limiter(limiter: RepeatLimiter) -> structlog.types.Processor:
    """A structlog processor dropping repeats of our own warnings and errors (by event)."""

    def limit(
        _logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if method_name not in _LIMITED_LEVELS:
            return event_dict
        held = limiter.admit((method_name, str(event_dict.get("event"))))
        if held is None:
            raise structlog.DropEvent
        if held:
            event_dict["suppressed"] = held
        return event_dict

    return limit


class StdlibRepeatFilter(logging.Filter):
    """The same for libraries' loggers (aiokafka, uvicorn, SQLAlchemy), keyed by logger and
    message template (not the formatted text: it holds changing addresses and counters)."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self._limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        held = self._limiter.admit((record.name, record.levelno, str(record.msg)))
        if held is None:
            return False
        if held:
            record.suppressed = held
        return True
