"""One calendar: the sites' business time comes from dispatch's ``site.calendar-changed.v1``
events only. A site unknown yet is measured on the call centre's hours and measured again when
its calendar arrives; the latest calendar of a site wins; a full-web lead follows the pool's."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm.settings import CrmSettings
from crm.sla.observations import Observation
from crm.sla.repository import SlaRepository
from shared.db import session_scope
from shared.events.payloads import FULL_WEB_POOL
from tests.crm.conftest import CrmFactory, publish_calendar, record, runtime_of
from tests.support.clock import Clock
from tests.support.harness import RunningService

PARIS = ZoneInfo("Europe/Paris")
ALWAYS = "mon-sun 00:00-24:00"
NIGHT = datetime(2026, 11, 24, 2, 0, tzinfo=PARIS)  # a Tuesday, 02:00: every default is closed
RANGE = {"from": "2026-11-23", "to": "2026-11-28"}


def offered(lead: str, at: datetime, site: str, channel: str = "in_store") -> list[Observation]:
    return [
        Observation(
            lead, {"received": at, "qualified": at}, source="api", site=site, channel=channel
        ),
        Observation(lead, {"offered": at}, site=site, seller_id="s-1"),
    ]


async def fact(service: RunningService, lead: str) -> dict[str, object]:
    runtime = runtime_of(service)
    async with session_scope(runtime.session_factory) as session:
        row = await SlaRepository.from_session(session).get(lead)
    assert row is not None
    return row


async def test_a_site_open_all_day_counts_night_minutes_as_business_minutes(
    crm: CrmFactory,
) -> None:
    # The repro: a site open mon-sun 00:00-24:00, an offer left to expire at night.
    clock = Clock(NIGHT)
    async with crm.running(clock=clock) as system:
        service = system.services["crm"]
        await publish_calendar(service, "night-shop", ALWAYS)
        await record(
            service, [*offered("N1", NIGHT, "night-shop"), *offered("N2", NIGHT, "night-shop")]
        )
        await record(service, [Observation("N2", {"accepted": NIGHT + timedelta(minutes=1)})])
        accepted = await fact(service, "N2")
        assert accepted["accepted_business_s"] == accepted["accepted_wall_s"] == 60
        assert accepted["calendar_provisional"] is False
        # N1's offer expired (dispatch's expiry ends no SLA stage): 11 minutes later it is
        # overdue by 11 business minutes, as many as on the wall clock.
        clock.advance(minutes=11)
        response = await system.crm.get("/v1/sla/breaches", params={**RANGE, "stage": "accepted"})
        [breach] = response.json()["items"]
        assert breach["lead_id"] == "N1"
        assert breach["state"] == "overdue"
        assert breach["business_minutes"] == breach["wall_minutes"] == 11.0
        assert breach["lateness_minutes"] == 1.0


async def test_an_unknown_site_falls_back_to_the_call_centre_and_is_measured_again(
    crm: CrmFactory,
) -> None:
    async with crm.running(clock=Clock(NIGHT)) as system:
        service = system.services["crm"]
        await record(service, offered("U1", NIGHT, "new-site"))
        await record(service, [Observation("U1", {"accepted": NIGHT + timedelta(minutes=5)})])
        before = await fact(service, "U1")
        # The call centre is closed at 02:00: no business minute yet, and marked provisional.
        assert (before["accepted_business_s"], before["accepted_wall_s"]) == (0, 300)
        assert before["calendar_provisional"] is True
        await publish_calendar(service, "new-site", ALWAYS)
        after = await fact(service, "U1")
        assert (after["accepted_business_s"], after["accepted_wall_s"]) == (300, 300)
        assert after["calendar_provisional"] is False


async def test_the_latest_calendar_of_a_site_wins_and_moves_running_deadlines(
    crm: CrmFactory,
) -> None:
    clock = Clock(NIGHT)
    async with crm.running(clock=clock) as system:
        service = system.services["crm"]
        await publish_calendar(service, "lyon", "mon-fri 09:00-19:00")
        await record(service, offered("L1", NIGHT, "lyon"))
        due = (await fact(service, "L1"))["accepted_due_at"]
        assert due == datetime(2026, 11, 24, 9, 10, tzinfo=PARIS)
        # The site now opens all day: the running stage's deadline moves.
        await publish_calendar(
            service, "lyon", ALWAYS, change="updated", changed_at=NIGHT + timedelta(minutes=1)
        )
        assert (await fact(service, "L1"))["accepted_due_at"] == NIGHT + timedelta(minutes=10)
        # An older event delivered late changes nothing.
        await publish_calendar(
            service, "lyon", "mon-fri 09:00-19:00", change="updated", changed_at=NIGHT
        )
        assert (await fact(service, "L1"))["accepted_due_at"] == NIGHT + timedelta(minutes=10)


async def test_a_full_web_lead_follows_the_pool_calendar_not_its_site(crm: CrmFactory) -> None:
    async with crm.running(clock=Clock(NIGHT)) as system:
        service = system.services["crm"]
        await publish_calendar(service, "lyon", "mon-fri 09:00-19:00")
        await record(service, offered("W1", NIGHT, "lyon", channel="full_web"))
        await record(service, [Observation("W1", {"accepted": NIGHT + timedelta(minutes=2)})])
        assert (await fact(service, "W1"))["calendar_provisional"] is True  # no pool calendar yet
        await publish_calendar(service, FULL_WEB_POOL, ALWAYS)
        row = await fact(service, "W1")
        assert row["accepted_business_s"] == 120
        assert row["calendar_provisional"] is False


@pytest.mark.parametrize("variable", ["CRM_SLA_SITE_HOURS", "CRM_SLA_HOURS_BY_SITE"])
def test_the_removed_site_hours_settings_are_refused(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "mon-fri 09:00-18:00")
    with pytest.raises(ValueError, match=r"site\.calendar-changed\.v1"):
        CrmSettings()
