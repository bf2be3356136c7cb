"""Offer → decline / expiry → next seller → escalation, with durable timers on a moved clock;
acceptance, first-contact deadline, follow-ups inside the legal calling window; vehicle sold."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatch.models import Timer
from tests.dispatch.conftest import DispatchApi
from tests.support.clock import PARIS, Clock


async def test_decline_then_expiry_then_escalation_then_reroute(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    sellers = [await dispatch.seller(name) for name in ("A", "B")]
    clients = {s["id"]: await dispatch.seller_client(s["id"]) for s in sellers}
    lead = await dispatch.qualify()

    first = (await dispatch.assignments(lead))[0]
    clock.advance(minutes=1)
    response = await clients[first["seller_id"]].post(
        f"/v1/assignments/{first['id']}/decline", json={"reason": "busy"}
    )
    assert response.status_code == 200, response.text
    rows = await dispatch.assignments(lead)
    assert [row["status"] for row in rows] == ["declined", "offered"]
    second = rows[1]
    assert second["seller_id"] != first["seller_id"]

    # Nobody accepts: the offer expires after 10 business minutes; nobody is left this round.
    clock.advance(minutes=8)
    assert await dispatch.timers.fire_due() == 0
    clock.advance(minutes=2)
    assert await dispatch.timers.fire_due() == 1
    rows = await dispatch.assignments(lead)
    assert [row["status"] for row in rows] == ["declined", "expired"]
    state = await dispatch.lead(lead)
    assert state["status"] == "unassigned"
    assert [e["data"]["reason"] for e in await dispatch.events("lead.escalated.v1")] == [
        "no_seller_available"
    ]
    assert [item["lead_id"] for item in (await dispatch.admin.get("/v1/unassigned")).json()] == [
        lead
    ]
    assert len(await dispatch.events("assignment.expired.v1")) == 1
    assert len(await dispatch.events("assignment.declined.v1")) == 1

    # The reroute timer tries again 15 business minutes later: everybody is eligible again.
    clock.advance(minutes=16)
    assert await dispatch.timers.fire_due() == 1
    rows = await dispatch.assignments(lead)
    assert rows[-1]["status"] == "offered"
    assert (await dispatch.lead(lead))["status"] == "offered"
    # Firing again does nothing: each timer fires once.
    assert await dispatch.timers.fire_due() == 0


async def test_accept_deadline_counts_business_minutes(dispatch: DispatchApi, clock: Clock) -> None:
    await dispatch.site()
    await dispatch.seller("A")
    clock.now = datetime(2026, 11, 24, 12, 25, tzinfo=PARIS)  # 5 minutes before lunch
    lead = await dispatch.qualify()
    offer = (await dispatch.assignments(lead))[0]
    # 5 minutes before the break, 5 after it reopens at 14:00.
    expected = datetime(2026, 11, 24, 14, 5, tzinfo=PARIS)
    assert datetime.fromisoformat(offer["accept_due_at"]) == expected


async def test_accept_first_contact_overdue_and_followups(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    seller = await dispatch.seller("A")
    client = await dispatch.seller_client(seller["id"])
    lead = await dispatch.qualify()
    offer = (await dispatch.assignments(lead))[0]
    clock.advance(minutes=3)
    accepted = await client.post(f"/v1/assignments/{offer['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "accepted"
    due = datetime.fromisoformat(body["first_contact_due_at"])
    assert due == clock.now + timedelta(hours=1)
    assert (await dispatch.lead(lead))["status"] == "assigned"
    assert len(await dispatch.events("lead.assigned.v1")) == 1
    assert len(await dispatch.events("assignment.accepted.v1")) == 1
    # The accept-deadline timer was cancelled: nothing expires.
    clock.advance(minutes=30)
    assert await dispatch.timers.fire_due() == 0

    # First contact overdue: escalated, the lead stays with the seller; the board shows it.
    clock.advance(minutes=31)
    assert await dispatch.timers.fire_due() == 1
    escalated = (await dispatch.events("lead.escalated.v1"))[-1]["data"]
    assert escalated["reason"] == "first_contact_overdue"
    board = (await dispatch.admin.get("/v1/board")).json()
    breached = [item for site in board["sites"] for item in site["breached"]]
    assert [item["lead_id"] for item in breached] == [lead]

    contacted = await client.post(
        f"/v1/assignments/{offer['id']}/contacted", json={"channel": "phone"}
    )
    assert contacted.status_code == 200
    async with dispatch.runtime.session_factory() as session:
        from sqlalchemy import select

        followups = (
            await session.scalars(
                select(Timer).where(Timer.kind == "followup", Timer.fired_at.is_(None))
            )
        ).all()
    assert len(followups) == 1
    # J+1 of a Tuesday 12:04 contact: Wednesday 12:04, inside the legal window.
    assert followups[0].due_at.astimezone(PARIS).date() == datetime(2026, 11, 25).date()

    # Follow-ups at J+1, J+3, J+7 never fall at a forbidden time (J+3 is a Friday; J+7 a
    # Tuesday: all weekdays) and stop once there is an appointment.
    clock.advance(days=1, minutes=1)
    assert await dispatch.timers.fire_due() == 1
    due_events = await dispatch.events("lead.followup-due.v1")
    assert [event["data"]["followup_number"] for event in due_events] == [1]
    appointment = await client.post(
        f"/v1/assignments/{offer['id']}/appointment",
        json={"appointment_at": (clock.now + timedelta(days=2)).isoformat(), "site_id": "lyon"},
    )
    assert appointment.status_code == 200, appointment.text
    clock.advance(days=10)
    assert await dispatch.timers.fire_due() == 0


async def test_followup_on_a_sunday_moves_to_the_next_legal_window(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    seller = await dispatch.seller("A")
    client = await dispatch.seller_client(seller["id"])
    clock.now = datetime(2026, 11, 28, 11, 0, tzinfo=PARIS)  # Saturday, store open
    lead = await dispatch.qualify()
    offer = (await dispatch.assignments(lead))[0]
    assert (await client.post(f"/v1/assignments/{offer['id']}/accept")).status_code == 200
    first_due = (await dispatch.assignments(lead))[0]["first_contact_due_at"]
    # Saturday is outside the legal calling hours: the deadline moves to Monday 10:00.
    assert datetime.fromisoformat(first_due) >= datetime(2026, 11, 30, 10, 0, tzinfo=PARIS)
    response = await client.post(
        f"/v1/assignments/{offer['id']}/contacted", json={"channel": "email"}
    )
    assert response.status_code == 200
    async with dispatch.runtime.session_factory() as session:
        from sqlalchemy import select

        timer = await session.scalar(
            select(Timer).where(Timer.kind == "followup", Timer.fired_at.is_(None))
        )
    assert timer is not None
    # J+1 = Sunday 11:00: forbidden; Monday 10:00 instead.
    assert timer.due_at == datetime(2026, 11, 30, 10, 0, tzinfo=PARIS)


async def test_vehicle_sold_closes_the_other_leads(dispatch: DispatchApi, clock: Clock) -> None:
    await dispatch.site()
    a = await dispatch.seller("A")
    await dispatch.seller("B")
    await dispatch.admin.put("/v1/vehicles/AD-1", json={"site_id": "lyon"})
    winner = await dispatch.qualify(vehicle_ad_ref="AD-1")
    other = await dispatch.qualify(vehicle_ad_ref="AD-1")
    unrelated = await dispatch.qualify(vehicle_ad_ref="AD-2")
    offer = (await dispatch.assignments(winner))[0]
    client = await dispatch.seller_client(offer["seller_id"])
    assert (await client.post(f"/v1/assignments/{offer['id']}/accept")).status_code == 200
    sold = await client.post(f"/v1/assignments/{offer['id']}/sold")
    assert sold.status_code == 200
    assert (await dispatch.lead(winner))["status"] == "won"
    assert (await dispatch.lead(other))["status"] == "lost"
    assert (await dispatch.lead(unrelated))["status"] == "offered"
    assert (await dispatch.assignments(other))[0]["status"] == "withdrawn"
    lost = (await dispatch.events("lead.lost.v1"))[-1]["data"]
    assert lost == {**lost, "lead_id": other, "reason": "vehicle_sold"}
    assert len(await dispatch.events("lead.won.v1")) == 1
    # A new lead for the sold vehicle is closed at once; the API works for sales elsewhere.
    late = await dispatch.qualify(vehicle_ad_ref="AD-1")
    assert (await dispatch.lead(late))["status"] == "lost"
    response = await dispatch.admin.post("/v1/vehicles/AD-2/sold")
    assert response.json() == {"ad_ref": "AD-2", "closed_leads": 1}
    # Loads are released: A and B have nothing open.
    sellers = (await dispatch.admin.get("/v1/sellers")).json()
    assert {s["id"]: s["open_count"] for s in sellers}[a["id"]] == 0
    assert all(s["open_count"] == 0 for s in sellers)


async def test_board_shows_at_risk_then_breached_per_site(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site("lyon")
    await dispatch.site("paris", postcode="75011")
    await dispatch.seller("Lyon")
    lyon_lead = await dispatch.qualify()
    paris_lead = await dispatch.qualify(site="paris")  # nobody in Paris: unassigned
    clock.advance(minutes=6)  # the accept deadline (10 min) is 4 minutes away: at risk
    board = (await dispatch.admin.get("/v1/board")).json()
    by_site = {site["site_id"]: site for site in board["sites"]}
    assert [item["lead_id"] for item in by_site["lyon"]["at_risk"]] == [lyon_lead]
    assert by_site["lyon"]["at_risk"][0]["deadline"] == "accept"
    assert [item["lead_id"] for item in by_site["paris"]["unassigned"]] == [paris_lead]
    clock.advance(minutes=5)  # passed, the timer has not fired yet: breached
    board = (await dispatch.admin.get("/v1/board", params={"site_id": "lyon"})).json()
    [site] = board["sites"]
    assert [item["lead_id"] for item in site["breached"]] == [lyon_lead]
    assert site["at_risk"] == []
    assert "Jeanne" not in str(board)
