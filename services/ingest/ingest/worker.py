"""Ingest's worker: the outbox relay only (ingest consumes no events yet)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.consumer import EventConsumer
from shared.runtime import Runtime


def consumers(runtime: Runtime) -> Sequence[EventConsumer]:
    return []
