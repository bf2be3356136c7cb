"""One configuration of the call centre's hours: qualify (queue deadlines) and crm (the
operators' SLA stages) read the same unprefixed ``CALL_CENTRE_*`` variables; the former
per-service variables are refused at start instead of being silently ignored."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from crm.settings import CrmSettings
from crm.sla.stages import STAGES_BY_NAME, policy_from_settings
from qualify.policy import Policy
from qualify.settings import QualifySettings

PARIS = ZoneInfo("Europe/Paris")


def test_qualify_and_crm_read_one_call_centre_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALL_CENTRE_HOURS", "mon-sun 08:00-20:00")
    monkeypatch.setenv("CALL_CENTRE_HOLIDAY_SUBDIVISION", "57")
    monkeypatch.setenv("CALL_CENTRE_CLOSURES", '["2026-12-24"]')
    crm, qualify = CrmSettings(), QualifySettings()
    assert crm.call_centre_calendar() == qualify.call_centre_calendar()
    assert Policy.from_settings(qualify).calendar == crm.call_centre_calendar()
    centre = policy_from_settings(crm).call_centre
    assert centre == crm.call_centre_calendar()
    # Sunday 08:00-08:15 is open on these hours (closed on the former defaults).
    sunday = datetime(2026, 11, 29, 8, 0, tzinfo=PARIS)
    measure = policy_from_settings(crm).measure(
        STAGES_BY_NAME["first_attempt"], sunday, sunday.replace(minute=15), None
    )
    assert measure.business_s == 15 * 60
    assert centre.is_closed_day(date(2026, 12, 24))  # the closure
    assert centre.is_closed_day(date(2026, 12, 26))  # Saint Stephen's day in Moselle


@pytest.mark.parametrize(
    ("variable", "settings"),
    [
        ("QUALIFY_BUSINESS_HOURS", QualifySettings),
        ("QUALIFY_HOLIDAY_SUBDIVISION", QualifySettings),
        ("CRM_SLA_CALL_CENTRE_HOURS", CrmSettings),
        ("CRM_CALL_CENTRE_HOURS", CrmSettings),
    ],
)
def test_a_former_or_prefixed_copy_is_refused(
    variable: str, settings: type[CrmSettings | QualifySettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "mon-fri 09:00-18:00")
    with pytest.raises(ValueError, match=f"{variable}.*CALL_CENTRE_"):
        settings()


def test_unreadable_hours_stop_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALL_CENTRE_HOURS", "someday 25:00-26:00")
    with pytest.raises(ValueError, match="invalid call centre calendar"):
        CrmSettings()
