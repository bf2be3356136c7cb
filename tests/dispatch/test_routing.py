"""Routing table: who gets the offer (site closed, lunch break, absent, at capacity, nobody on
shift, full-web fallback, do-not-contact, vehicle site, skills, least loaded + round robin)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dispatch.routing.strategy import (
    LeastLoaded,
    RoundRobin,
    RoutingStrategy,
    register,
    strategy_named,
    strategy_names,
)
from tests.dispatch.conftest import DispatchApi
from tests.support.clock import PARIS, Clock


async def offered_to(api: DispatchApi, lead_id: str) -> str | None:
    rows = [row for row in await api.assignments(lead_id) if row["status"] == "offered"]
    return rows[-1]["seller_id"] if rows else None


async def test_least_loaded_seller_of_the_site_gets_the_offer(dispatch: DispatchApi) -> None:
    await dispatch.site("lyon")
    await dispatch.site("paris", postcode="75011")
    busy = await dispatch.seller("Busy")
    free = await dispatch.seller("Free")
    await dispatch.seller("Elsewhere", site_id="paris")
    first = await dispatch.qualify()
    chosen = await offered_to(dispatch, first)
    assert chosen in {busy["id"], free["id"]}
    other = free["id"] if chosen == busy["id"] else busy["id"]
    second = await dispatch.qualify()
    assert await offered_to(dispatch, second) == other  # least loaded
    event = (await dispatch.events("assignment.offered.v1"))[-1]
    assert event["data"]["seller_id"] == other
    assert event["data"]["strategy"] == "least_loaded"
    # Accept within 10 business minutes of the site.
    assert datetime.fromisoformat(event["data"]["accept_due_at"]) == dispatch.clock.now + timedelta(
        minutes=10
    )


async def test_round_robin_breaks_ties_between_equal_loads(dispatch: DispatchApi) -> None:
    await dispatch.site()
    sellers = [await dispatch.seller(name) for name in ("A", "B", "C")]
    chosen = []
    for _ in range(3):
        lead = await dispatch.qualify()
        chosen.append(await offered_to(dispatch, lead))
        dispatch.clock.advance(seconds=1)
    assert set(chosen) == {seller["id"] for seller in sellers}  # each once


@pytest.mark.parametrize(
    ("moment", "why"),
    [
        (datetime(2026, 11, 24, 12, 45, tzinfo=PARIS), "lunch break"),
        (datetime(2026, 11, 29, 11, 0, tzinfo=PARIS), "Sunday: site closed"),
        (datetime(2026, 12, 25, 11, 0, tzinfo=PARIS), "public holiday"),
        (datetime(2026, 11, 24, 21, 0, tzinfo=PARIS), "evening"),
    ],
)
async def test_closed_site_gets_no_offer_and_the_lead_is_escalated(
    dispatch: DispatchApi, clock: Clock, moment: datetime, why: str
) -> None:
    await dispatch.site()
    await dispatch.seller("Always", shifts="mon-sun 00:00-24:00")
    clock.now = moment
    lead = await dispatch.qualify()
    assert await offered_to(dispatch, lead) is None, why
    state = await dispatch.lead(lead)
    assert state["status"] == "unassigned"
    assert state["escalation_reason"] == "no_seller_available"
    unassigned = (await dispatch.admin.get("/v1/unassigned")).json()
    assert [item["lead_id"] for item in unassigned] == [lead]
    assert len(await dispatch.events("lead.escalated.v1")) == 1


async def test_absent_seller_at_capacity_and_off_shift_are_skipped(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    now = clock.now
    await dispatch.seller(
        "Absent",
        absences=[
            {
                "start": (now - timedelta(hours=1)).isoformat(),
                "end": (now + timedelta(days=1)).isoformat(),
            }
        ],
    )
    full = await dispatch.seller("Full", capacity=1)
    await dispatch.seller("Night", shifts="mon-sun 20:00-23:00")
    await dispatch.seller("Inactive", active=False)
    first = await dispatch.qualify()
    assert await offered_to(dispatch, first) == full["id"]
    second = await dispatch.qualify()  # Full is at capacity now, nobody else can
    assert await offered_to(dispatch, second) is None
    assert (await dispatch.lead(second))["status"] == "unassigned"


async def test_nobody_on_shift_escalates_to_the_site_manager(
    dispatch: DispatchApi, receiver: object
) -> None:
    await dispatch.site()
    manager = await dispatch.seller("Manager", shifts="mon-fri 06:00-07:00")
    await dispatch.admin.put(
        "/v1/sites/lyon",
        json={
            "id": "lyon",
            "name": "Store lyon",
            "postcode": "69003",
            "opening_hours": "mon-fri 09:00-12:30,14:00-19:00",
            "manager_seller_id": manager["id"],
        },
    )
    lead = await dispatch.qualify()
    escalated = (await dispatch.events("lead.escalated.v1"))[-1]["data"]
    assert escalated["lead_id"] == lead
    assert escalated["escalation_target"] == manager["id"]


async def test_closed_site_falls_back_to_the_full_web_pool(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site(full_web_fallback=True, fallback_after_minutes=60)
    web = await dispatch.seller("Web", mode="full_web", site_id=None, shifts="mon-sun 08:00-22:00")
    clock.now = datetime(2026, 11, 28, 15, 0, tzinfo=PARIS)  # Saturday afternoon, closed
    lead = await dispatch.qualify()
    assert await offered_to(dispatch, lead) == web["id"]
    assert (await dispatch.lead(lead))["routed_to"] == "full_web"
    # During the lunch break (reopens in 90 min > 60): fallback too; at 12:50 on a weekday
    # with a 60 min delay it reopens at 14:00, 70 min later.
    clock.now = datetime(2026, 11, 24, 13, 50, tzinfo=PARIS)  # reopens in 10 min: wait
    other = await dispatch.qualify()
    assert await offered_to(dispatch, other) is None
    assert (await dispatch.lead(other))["routed_to"] == "in_store"


async def test_full_web_leads_go_to_the_full_web_pool(dispatch: DispatchApi) -> None:
    await dispatch.site()
    await dispatch.seller("Store")
    web = await dispatch.seller("Web", mode="full_web", site_id=None)
    lead = await dispatch.qualify(channel="full_web", site=None)
    assert await offered_to(dispatch, lead) == web["id"]


async def test_the_site_holding_the_vehicle_wins_over_the_qualified_site(
    dispatch: DispatchApi,
) -> None:
    await dispatch.site("lyon")
    await dispatch.site("paris", postcode="75011")
    await dispatch.seller("Lyon")
    paris = await dispatch.seller("Paris", site_id="paris")
    response = await dispatch.admin.put("/v1/vehicles/AD-42", json={"site_id": "paris"})
    assert response.status_code == 200
    lead = await dispatch.qualify(vehicle_ad_ref="AD-42", site="lyon")
    assert await offered_to(dispatch, lead) == paris["id"]


async def test_skills_are_preferred_then_relaxed(dispatch: DispatchApi) -> None:
    await dispatch.site()
    await dispatch.seller("Plain")
    english = await dispatch.seller("English", skills=["lang:en", "financing"])
    lead = await dispatch.qualify(language="en", financing_wanted=True)
    assert await offered_to(dispatch, lead) == english["id"]
    german = await dispatch.qualify(language="de")  # nobody speaks it: relaxed
    assert await offered_to(dispatch, german) is not None


async def test_brand_specialists_get_their_brand(dispatch: DispatchApi) -> None:
    await dispatch.site()
    await dispatch.seller("Generalist")
    specialist = await dispatch.seller("Peugeot", skills=["brand:peugeot"])
    stocked = await dispatch.admin.put(
        "/v1/vehicles/AD-208", json={"site_id": "lyon", "make": "Peugeot"}
    )
    assert stocked.json()["make"] == "Peugeot"
    for _ in range(2):  # even when the specialist is the more loaded one
        lead = await dispatch.qualify(vehicle_ad_ref="AD-208")
        assert await offered_to(dispatch, lead) == specialist["id"]


async def test_do_not_contact_is_honoured(dispatch: DispatchApi) -> None:
    await dispatch.site()
    seller = await dispatch.seller("S")
    lead = await dispatch.qualify()
    assert await offered_to(dispatch, lead) == seller["id"]
    response = await dispatch.admin.post(f"/v1/leads/{lead}/do-not-contact")
    assert response.status_code == 200
    assert response.json()["status"] == "lost"
    rows = await dispatch.assignments(lead)
    assert rows[0]["status"] == "withdrawn"
    lost = (await dispatch.events("lead.lost.v1"))[-1]["data"]
    assert lost["reason"] == "do_not_contact"
    refused = await dispatch.qualify(
        consents={
            "phone": {
                "granted": False,
                "at": dispatch.clock.now.isoformat(),
                "wording": "Je ne veux pas être appelé",
                "collected_via": "phone_call",
            }
        }
    )
    assert await dispatch.assignments(refused) == []
    assert (await dispatch.lead(refused))["status"] == "lost"


def test_strategies_are_pluggable() -> None:
    assert {"least_loaded", "round_robin"} <= set(strategy_names())
    assert isinstance(strategy_named("least_loaded"), LeastLoaded)
    assert isinstance(strategy_named("round_robin"), RoundRobin)

    class Custom(RoundRobin):
        name = "custom_test"

    custom: RoutingStrategy = Custom()
    register(custom)
    assert strategy_named("custom_test") is custom
    with pytest.raises(KeyError):
        strategy_named("nope")


async def test_round_robin_strategy_ignores_load(tmp_path: object, clock: Clock) -> None:
    from pathlib import Path

    from tests.dispatch.conftest import dispatch_settings, start_dispatch

    assert isinstance(tmp_path, Path)
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'rr.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        routing_strategy="round_robin",
    )
    async with start_dispatch(settings, clock) as api:
        await api.site()
        await api.seller("A")
        await api.seller("B")
        first = await api.qualify()
        clock.advance(seconds=1)
        second = await api.qualify()
        clock.advance(seconds=1)
        third = await api.qualify()
        chosen = [await offered_to(api, lead) for lead in (first, second, third)]
        assert chosen[0] != chosen[1]
        assert chosen[2] == chosen[0]  # least recently offered, although it has more load
