"""One configuration for the legal calling rules: qualify (operators' calls) and dispatch
(sellers' first-contact deadlines and reminders) read the same unprefixed ``CALLING_*``
variables, and the same environment gives them the same rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from dispatch.settings import DispatchSettings
from qualify.policy import Policy
from qualify.settings import QualifySettings
from shared.contact_rules import CallingRules
from tests.dispatch.conftest import dispatch_settings, start_dispatch
from tests.support.clock import PARIS, Clock

ENVIRONMENT = {
    "CALLING_HOURS": "mon-sat 09:00-12:00,13:00-21:00",
    "CALLING_TIMEZONE": "Indian/Reunion",
    "CALLING_HOLIDAY_SUBDIVISION": "974",
    "CALLING_MAX_CALLS": "3",
    "CALLING_PERIOD_DAYS": "20",
    "CALLING_REFUSAL_BLOCK_DAYS": "90",
    "CALLING_REFUSAL_PERMANENT_FROM": "2027-01-01",
    "CALLING_OWN_REQUEST_EXEMPT": "false",
    "CALLING_OWN_REQUEST_MAX_AGE_HOURS": "24",
}


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"QUALIFY_{name}", raising=False)
        monkeypatch.delenv(f"DISPATCH_{name}", raising=False)


def test_the_same_environment_gives_both_services_the_same_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    dispatch_rules = DispatchSettings().calling_rules()
    qualify_settings = QualifySettings()
    assert qualify_settings.calling_rules() == dispatch_rules
    assert Policy.from_settings(qualify_settings).calling == dispatch_rules
    assert dispatch_rules == CallingRules(
        hours="mon-sat 09:00-12:00,13:00-21:00",
        timezone="Indian/Reunion",
        subdivision="974",
        max_calls=3,
        period=timedelta(days=20),
        refusal_block=timedelta(days=90),
        refusal_permanent_from=datetime(2027, 1, 1).date(),
        own_request_exempt=False,
        own_request_max_age=timedelta(hours=24),
    )
    assert dispatch_rules != CallingRules()


def test_defaults_are_the_legal_rules_and_prefixed_names_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert DispatchSettings().calling_rules() == CallingRules()
    assert QualifySettings().calling_rules() == CallingRules()
    # Field names stay usable as keyword arguments (tests, tools).
    assert DispatchSettings(calling_max_calls=2).calling_rules().max_calls == 2
    # A service's prefix would make a second, diverging configuration (qualify's old names):
    # refused at start, naming what to set instead.
    for settings_class, prefix in ((QualifySettings, "QUALIFY_"), (DispatchSettings, "DISPATCH_")):
        monkeypatch.setenv(f"{prefix}CALLING_HOURS", "mon-sun 00:00-24:00")
        with pytest.raises(ValidationError, match=f"{prefix}CALLING_HOURS: .*CALLING_"):
            settings_class()
        monkeypatch.delenv(f"{prefix}CALLING_HOURS")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CALLING_HOURS", "funday 9-5"),
        ("CALLING_TIMEZONE", "Mars/Olympus"),
        ("CALLING_HOLIDAY_SUBDIVISION", "99"),
        ("CALLING_MAX_CALLS", "0"),
    ],
)
def test_a_bad_value_stops_both_services_at_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    for settings_class in (DispatchSettings, QualifySettings):
        with pytest.raises(ValidationError):
            settings_class()


async def test_dispatch_moves_first_contact_into_the_configured_window(
    tmp_path: Path, clock: Clock
) -> None:
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        calling_hours="mon-fri 14:00-20:00",
    )
    async with start_dispatch(settings, clock) as api:
        await api.site()
        seller = await api.seller("Ana")
        lead = await api.qualify()
        [offer] = await api.assignments(lead)
        client = await api.seller_client(seller["id"])
        accepted = (await client.post(f"/v1/assignments/{offer['id']}/accept")).json()
    # Due at 12:00 in business time; the configured window opens at 14:00 (not the legal 10:00).
    due = datetime.fromisoformat(accepted["first_contact_due_at"]).astimezone(PARIS)
    assert (due.date(), due.hour, due.minute) == (clock.now.date(), 14, 0)
