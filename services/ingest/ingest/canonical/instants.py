"""Instants read by the adapters (an ADF ``requestdate``, an e-mail's ``Date``, a Graph API
``created_time``, a Messenger timestamp): in UTC when they lie within the bounds every instant
from outside must respect (``shared.instants``), else unknown, so the lead is received "now"
rather than failing on a date no lead can have (``astimezone`` overflows near year 1 or 9999)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.instants import within_bounds


def utc_instant(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC (a naive one read as UTC) when within the bounds, else None."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC) if within_bounds(aware) else None
