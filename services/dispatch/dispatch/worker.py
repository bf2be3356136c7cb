"""Dispatch's worker: the outbox relay (dispatch consumes ``lead.qualified`` once it exists)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.consumer import EventConsumer
from shared.runtime import Runtime


def consumers(runtime: Runtime) -> Sequence[EventConsumer]:
    return []
