"""W3C trace context (``traceparent``), carried through HTTP, bus headers and webhooks."""

from __future__ import annotations

import re
from contextvars import ContextVar

from shared.random_ids import random_hex

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

current_traceparent: ContextVar[str | None] = ContextVar("current_traceparent", default=None)


def new_traceparent() -> str:
    return f"00-{random_hex(16)}-{random_hex(8)}-01"


def is_valid(traceparent: str | None) -> bool:
    if traceparent is None:
        return False
    match = _TRACEPARENT.match(traceparent)
    if match is None:
        return False
    return match.group(1) != "0" * 32 and match.group(2) != "0" * 16


def child_of(traceparent: str | None) -> str:
    """A new span id in the same trace, or a new trace when the parent is missing or invalid."""
    if traceparent is None or not is_valid(traceparent):
        return new_traceparent()
    return f"{traceparent[:36]}{random_hex(8)}{traceparent[52:]}"  # 00-<trace id>-<new>-<flags>


def trace_id_of(traceparent: str | None) -> str | None:
    if traceparent is None or not is_valid(traceparent):
        return None
    return traceparent.split("-")[1]
