"""The real life of an appointment and of a held lead: reschedule (the history kept), no-show
(back to follow-ups), hand back (routed again, never to the same seller in that round; not a
loss), and the sale price on ``sold`` (``lead.won.v2`` beside ``lead.won.v1``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.dispatch.conftest import DispatchApi, dispatch_settings, start_dispatch
from tests.support.clock import Clock

PROBLEM = "application/problem+json"


async def _held(dispatch: DispatchApi, name: str = "Ana") -> tuple[str, str, httpx.AsyncClient]:
    """(lead, assignment, seller's client): a lead the seller accepted and contacted."""
    seller = await dispatch.seller(name)
    client = await dispatch.seller_client(seller["id"])
    lead = await dispatch.qualify()
    [offer] = await dispatch.assignments(lead)
    assert offer["seller_id"] == seller["id"]
    assert (await client.post(f"/v1/assignments/{offer['id']}/accept")).status_code == 200
    contacted = await client.post(
        f"/v1/assignments/{offer['id']}/contacted", json={"channel": "phone"}
    )
    assert contacted.status_code == 200
    return lead, str(offer["id"]), client


async def _appointments(dispatch: DispatchApi, lead: str) -> list[dict[str, Any]]:
    response = await dispatch.admin.get(f"/v1/leads/{lead}/appointments")
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_a_rescheduled_appointment_keeps_its_history(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    await dispatch.site("vienne", postcode="38200")
    lead, assignment, client = await _held(dispatch)
    url = f"/v1/assignments/{assignment}"
    first = clock.now + timedelta(days=2)
    set_ = await client.post(f"{url}/appointment", json={"appointment_at": first.isoformat()})
    assert set_.status_code == 200
    assert await dispatch.pending_timers(lead) == []  # no follow-up before an appointment
    clock.advance(hours=3)
    second = clock.now + timedelta(days=4)

    moved = await client.post(
        f"{url}/reschedule", json={"appointment_at": second.isoformat(), "site_id": "vienne"}
    )

    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["appointment_at"]) == second
    assert moved.json()["status"] == "appointment"
    history = await _appointments(dispatch, lead)
    assert [(a["status"], a["site_id"]) for a in history] == [
        ("rescheduled", "lyon"),
        ("scheduled", "vienne"),
    ]
    assert datetime.fromisoformat(history[0]["appointment_at"]) == first
    assert datetime.fromisoformat(history[0]["ended_at"]) == clock.now
    [event] = await dispatch.events("lead.appointment-rescheduled.v1")
    data = event["data"]
    assert datetime.fromisoformat(data["previous_appointment_at"]) == first
    assert datetime.fromisoformat(data["appointment_at"]) == second
    assert data["site_id"] == "vienne"
    assert len(await dispatch.events("lead.appointment-set.v1")) == 1
    assert (await dispatch.admin.get("/v1/leads/nope/appointments")).status_code == 404
    # Moved again without a site: it stays where the last one was.
    third = second + timedelta(days=1)
    again = await client.post(f"{url}/reschedule", json={"appointment_at": third.isoformat()})
    assert again.status_code == 200
    assert (await dispatch.events("lead.appointment-rescheduled.v1"))[-1]["data"][
        "site_id"
    ] == "vienne"
    assert [a["status"] for a in await _appointments(dispatch, lead)] == [
        "rescheduled",
        "rescheduled",
        "scheduled",
    ]
    # Refusals: in the past (422), unknown site (404), not in an appointment (409).
    past = (clock.now - timedelta(minutes=1)).isoformat()
    assert (await client.post(f"{url}/reschedule", json={"appointment_at": past})).status_code == (
        422
    )
    unknown = await client.post(
        f"{url}/reschedule", json={"appointment_at": third.isoformat(), "site_id": "nowhere"}
    )
    assert unknown.status_code == 404
    _lead2, assignment2, client2 = await _held(dispatch, "Bob")
    refused = await client2.post(
        f"/v1/assignments/{assignment2}/reschedule", json={"appointment_at": third.isoformat()}
    )
    assert refused.status_code == 409
    assert refused.json()["status_now"] == "contacted"
    assert refused.json()["allowed_from"] == ["appointment"]


async def test_a_no_show_sends_the_lead_back_to_follow_ups(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    lead, assignment, client = await _held(dispatch)
    url = f"/v1/assignments/{assignment}"
    at = clock.now + timedelta(days=1)
    await client.post(f"{url}/appointment", json={"appointment_at": at.isoformat()})

    early = await client.post(f"{url}/no-show")
    assert early.status_code == 409  # it has not taken place yet
    assert early.headers["content-type"] == PROBLEM

    clock.advance(days=1, hours=1)
    missed = await client.post(f"{url}/no-show")

    assert missed.status_code == 200, missed.text
    state = missed.json()
    assert (state["status"], state["appointment_at"]) == ("contacted", None)
    [appointment] = await _appointments(dispatch, lead)
    assert appointment["status"] == "missed"
    [event] = await dispatch.events("lead.appointment-missed.v1")
    assert datetime.fromisoformat(event["data"]["appointment_at"]) == at
    assert event["data"]["site_id"] == "lyon"
    # A new series of follow-ups, J+1 after the no-show (Thursday 12:00 → Friday 12:00).
    [(kind, owner, due)] = await dispatch.pending_timers(lead)
    assert (kind, owner) == ("followup", assignment)
    assert due == clock.now + timedelta(days=1)
    clock.advance(days=1)
    assert await dispatch.timers.fire_due() == 1
    [followup] = await dispatch.events("lead.followup-due.v1")
    assert followup["data"]["followup_number"] == 1
    # A new appointment may be set; a second no-show needs one.
    assert (await client.post(f"{url}/no-show")).status_code == 409
    again = await client.post(
        f"{url}/appointment", json={"appointment_at": (clock.now + timedelta(days=2)).isoformat()}
    )
    assert again.status_code == 200
    assert [a["status"] for a in await _appointments(dispatch, lead)] == ["missed", "scheduled"]


async def test_a_handed_back_lead_is_routed_again_but_not_to_that_seller(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    lead, assignment, client = await _held(dispatch)
    at = clock.now + timedelta(days=2)
    await client.post(
        f"/v1/assignments/{assignment}/appointment", json={"appointment_at": at.isoformat()}
    )
    ana = (await dispatch.lead(lead))["seller_id"]
    bob = (await dispatch.seller("Bob"))["id"]

    handed = await client.post(f"/v1/assignments/{assignment}/hand-back", json={"reason": "absent"})

    assert handed.status_code == 200, handed.text
    assert (handed.json()["status"], handed.json()["end_reason"]) == ("handed_back", "absent")
    assert await dispatch.open_count(ana) == 0
    [event] = await dispatch.events("assignment.handed-back.v1")
    assert (event["data"]["seller_id"], event["data"]["reason"]) == (ana, "absent")
    assert await dispatch.events("lead.lost.v1") == []  # not a loss
    # Offered to Bob with the lead's progress (contact and appointment).
    [offer] = [a for a in await dispatch.assignments(lead) if a["id"] != assignment]
    assert (offer["seller_id"], offer["status"]) == (bob, "offered")
    assert offer["previous_assignment_id"] == assignment
    assert datetime.fromisoformat(offer["appointment_at"]) == at
    bob_client = await dispatch.seller_client(bob)
    accepted = await bob_client.post(f"/v1/assignments/{offer['id']}/accept")
    assert accepted.json()["status"] == "appointment"  # the appointment still stands
    assert await dispatch.pending_timers(lead) == []
    # Bob hands it back too: Ana is out of this round, nobody else → escalated.
    await bob_client.post(f"/v1/assignments/{offer['id']}/hand-back", json={"reason": "overloaded"})
    assert (await dispatch.lead(lead))["status"] == "unassigned"
    [escalation] = await dispatch.events("lead.escalated.v1")
    assert escalation["data"]["reason"] == "no_seller_available"
    # Refusals: an offer is declined, not handed back; a bad reason is a 422.
    other = await dispatch.qualify()
    [fresh] = await dispatch.assignments(other)
    owner = await dispatch.seller_client(fresh["seller_id"])
    url = f"/v1/assignments/{fresh['id']}/hand-back"
    assert (await owner.post(url, json={"reason": "absent"})).status_code == 409
    assert (await owner.post(url, json={"reason": "bored"})).status_code == 422


async def test_the_sale_price_is_published_in_lead_won_v2(dispatch: DispatchApi) -> None:
    await dispatch.site()
    _lead, assignment, client = await _held(dispatch)
    url = f"/v1/assignments/{assignment}/sold"
    for bad in ({"price_eur": 0}, {"price_eur": -5}, {"price_eur": 12.5}, {"price": 100}):
        response = await client.post(url, json=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"]

    sold = await client.post(url, json={"price_eur": 14_990})

    assert sold.status_code == 200, sold.text
    assert sold.json()["sale_price_eur"] == 14_990
    [v2] = await dispatch.events("lead.won.v2")
    assert v2["data"]["sale_price_eur"] == 14_990
    assert v2["data"]["site_id"] == "lyon"
    [v1] = await dispatch.events("lead.won.v1")  # still published, for v1 readers
    assert "sale_price_eur" not in v1["data"]
    assert v1["data"]["won_at"] == v2["data"]["won_at"]
    # Without a body (or with no price), as before: a won lead without a price.
    _lead2, assignment2, client2 = await _held(dispatch, "Bob")
    assert (await client2.post(f"/v1/assignments/{assignment2}/sold")).status_code == 200
    assert (await dispatch.events("lead.won.v2"))[-1]["data"]["sale_price_eur"] is None


async def test_lead_won_v1_can_be_switched_off(tmp_path: Any, clock: Clock) -> None:
    settings = dispatch_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}",
        embedded_bus_path=tmp_path / "bus.db",
        publish_lead_won_v1=False,
    )
    async with start_dispatch(settings, clock) as api:
        await api.site()
        _lead, assignment, client = await _held(api)
        sold = await client.post(f"/v1/assignments/{assignment}/sold", json={"price_eur": 9_000})
        assert sold.status_code == 200
        assert await api.events("lead.won.v1") == []
        assert len(await api.events("lead.won.v2")) == 1


@pytest.mark.parametrize("action", ["reschedule", "no-show", "hand-back"])
async def test_new_call_backs_are_the_sellers_own(dispatch: DispatchApi, action: str) -> None:
    await dispatch.site()
    _lead, assignment, _ = await _held(dispatch)
    intruder = await dispatch.seller_client((await dispatch.seller("Eve"))["id"])
    body = {"reason": "other"} if action == "hand-back" else None
    if action == "reschedule":
        body = {"appointment_at": "2027-01-05T10:00:00+01:00"}
    response = await intruder.post(f"/v1/assignments/{assignment}/{action}", json=body)
    assert response.status_code == 403
    manager = await dispatch.client_for_roles("manager")
    assert (
        await manager.post(f"/v1/assignments/{assignment}/{action}", json=body)
    ).status_code == 403
    paths = (await dispatch.admin.get("/openapi.json")).json()["paths"]
    responses = paths[f"/v1/assignments/{{assignment_id}}/{action}"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409"} <= set(responses)
