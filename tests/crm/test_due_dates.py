"""GDPR requests are due one calendar month later and flagged a week before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm.privacy.due_dates import one_month_after, status_of


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (datetime(2026, 1, 15, 9, tzinfo=UTC), datetime(2026, 2, 15, 9, tzinfo=UTC)),
        (datetime(2026, 1, 31, 9, tzinfo=UTC), datetime(2026, 2, 28, 9, tzinfo=UTC)),
        (datetime(2028, 1, 31, 9, tzinfo=UTC), datetime(2028, 2, 29, 9, tzinfo=UTC)),
        (datetime(2026, 12, 20, 9, tzinfo=UTC), datetime(2027, 1, 20, 9, tzinfo=UTC)),
    ],
)
def test_one_month_after(start: datetime, due: datetime) -> None:
    assert one_month_after(start) == due


def test_flagged_at_d_minus_7_and_overdue_after_due() -> None:
    due = datetime(2026, 3, 1, tzinfo=UTC)
    assert status_of(now=due - timedelta(days=8), due_at=due, completed_at=None) == (
        "in_progress",
        False,
        False,
    )
    assert status_of(now=due - timedelta(days=7), due_at=due, completed_at=None) == (
        "in_progress",
        True,
        False,
    )
    assert status_of(now=due + timedelta(seconds=1), due_at=due, completed_at=None) == (
        "in_progress",
        True,
        True,
    )
    done = due - timedelta(days=20)
    assert status_of(now=due, due_at=due, completed_at=done) == ("completed", False, False)
