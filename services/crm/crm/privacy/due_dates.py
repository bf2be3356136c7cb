"""Legal deadlines of a GDPR request: one month (Art. 12(3)), flagged a week before."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from crm.privacy.schemas import RequestStatus

FLAG_BEFORE = timedelta(days=7)


def one_month_after(moment: datetime) -> datetime:
    """The same day next month, or that month's last day when it is shorter (31 Jan → 28 Feb)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def status_of(
    *, now: datetime, due_at: datetime, completed_at: datetime | None
) -> tuple[RequestStatus, bool, bool]:
    """(status, flagged at D-7, overdue)."""
    if completed_at is not None:
        return "completed", False, completed_at > due_at
    return "in_progress", now >= due_at - FLAG_BEFORE, now > due_at
