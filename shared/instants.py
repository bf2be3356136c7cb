"""Instants a client may send: timezone-aware and within a sane range.

Python's ``datetime`` stops at years 1 and 9999: ``9999-12-31T23:59:59-14:00`` parses, but its
UTC form is in year 10000 and ``astimezone`` raises ``OverflowError`` (a 500 waiting to happen in
the UTC column type). No lead, deadline or report of this system lies outside 2000-2100, so every
instant taken from outside is bounded to that range (a 422 beyond) and handed on in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError

EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)


def within_bounds(moment: datetime) -> bool:
    """An aware ``moment`` between the bounds (comparing aware datetimes cannot overflow)."""
    return moment.tzinfo is not None and EARLIEST_INSTANT <= moment <= LATEST_INSTANT


def _bounded(moment: datetime) -> datetime:
    if not within_bounds(moment):
        raise PydanticCustomError(
            "instant_out_of_range",
            "must be between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z",
        )
    return moment.astimezone(UTC)


# A timezone-aware instant between 2000 and 2100, converted to UTC; anything else is a 422
# (``timezone_aware`` for a naive one, ``instant_out_of_range`` beyond the bounds).
Instant = Annotated[AwareDatetime, AfterValidator(_bounded)]
