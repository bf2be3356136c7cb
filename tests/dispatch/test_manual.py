"""Managers move leads by hand: assign an escalated or offered lead to a chosen seller (an offer,
or directly), reassign one open lead to another seller or back to routing, reassign every open
lead of an absent seller; with the webhooks (withdrawn to the old seller, offered or assigned to
the new one), the events (who did it), the sellers' loads, the timers moved and the lead's
progress carried. Refusals are 404/409/422 problems; only managers may move leads."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.dispatch.conftest import DispatchApi, Receiver
from tests.support.clock import Clock

PROBLEM = "application/problem+json"


async def _hooked(dispatch: DispatchApi, receiver: Receiver, name: str, **values: Any) -> str:
    seller = await dispatch.seller(name, webhook_url=receiver.url(name), **values)
    receiver.secrets[name] = seller["webhook_secret"]
    return str(seller["id"])


async def _manager(dispatch: DispatchApi) -> tuple[httpx.AsyncClient, str]:
    return await dispatch.principal("manager")


async def test_an_escalated_lead_is_offered_to_the_chosen_seller(
    dispatch: DispatchApi, receiver: Receiver
) -> None:
    await dispatch.site()
    lead = await dispatch.qualify()  # nobody works here yet: escalated, a reroute timer waits
    assert (await dispatch.lead(lead))["status"] == "unassigned"
    assert [kind for kind, _, _ in await dispatch.pending_timers(lead)] == ["reroute"]
    bea = await _hooked(dispatch, receiver, "bea")
    manager, manager_token = await _manager(dispatch)

    response = await manager.post(f"/v1/leads/{lead}/assign", json={"seller_id": bea})

    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["lead_status"] == "offered"
    assert moved["previous_assignment_id"] is None
    offer = moved["assignment"]
    assert (offer["seller_id"], offer["status"], offer["strategy"]) == (bea, "offered", "manual")
    assert offer["assigned_by"] == manager_token
    assert await dispatch.open_count(bea) == 1
    # The reroute timer gave way to the offer's accept deadline.
    assert [(kind, owner) for kind, owner, _ in await dispatch.pending_timers(lead)] == [
        ("accept_deadline", offer["id"])
    ]
    [offered] = (await dispatch.events("assignment.offered.v1"))[-1:]
    assert offered["data"]["strategy"] == "manual"
    [event] = await dispatch.events("assignment.reassigned.v1")
    assert event["data"] | {"reassigned_at": None} == {
        "lead_id": lead,
        "mode": "offer",
        "reason": "manager_choice",
        "assignment_id": offer["id"],
        "seller_id": bea,
        "previous_assignment_id": None,
        "previous_seller_id": None,
        "reassigned_by": manager_token,
        "reassigned_at": None,
    }
    assert await dispatch.deliver() == 1
    [message] = receiver.of("bea")
    assert message.event_type == "assignment.offered"
    assert message.payload["data"]["assigned_by"] == "manager"
    assert message.payload["data"]["lead"]["contact"]["phone"] == "+33612345678"
    # The seller accepts as with any offer.
    client = await dispatch.seller_client(bea)
    assert (await client.post(f"/v1/assignments/{offer['id']}/accept")).status_code == 200
    assert (await dispatch.lead(lead))["status"] == "assigned"


async def test_a_direct_assignment_withdraws_the_offer_and_gives_the_lead_at_once(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await dispatch.site()
    ana = await _hooked(dispatch, receiver, "ana")
    lead = await dispatch.qualify()
    [offer_to_ana] = await dispatch.assignments(lead)
    await dispatch.deliver()
    bob = await _hooked(dispatch, receiver, "bob")
    manager, manager_token = await _manager(dispatch)
    before = len(await dispatch.events())

    response = await manager.post(
        f"/v1/leads/{lead}/assign", json={"seller_id": bob, "mode": "direct"}
    )

    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["lead_status"] == "assigned"
    assert moved["previous_assignment_id"] == offer_to_ana["id"]
    assert moved["previous_seller_id"] == ana
    held = moved["assignment"]
    assert held["status"] == "accepted"
    assert held["accepted_at"] == held["offered_at"] == held["accept_due_at"]
    first_contact_due = datetime.fromisoformat(held["first_contact_due_at"])
    assert first_contact_due == clock.now + timedelta(minutes=60)  # business time, legal window
    assert (await dispatch.lead(lead))["seller_id"] == bob
    assert (await dispatch.open_count(ana), await dispatch.open_count(bob)) == (0, 1)
    [ended] = [a for a in await dispatch.assignments(lead) if a["id"] == offer_to_ana["id"]]
    assert (ended["status"], ended["end_reason"]) == ("withdrawn", "reassigned")
    # Ana's accept deadline is cancelled; Bob's first contact is due.
    assert [(kind, owner) for kind, owner, _ in await dispatch.pending_timers(lead)] == [
        ("first_contact", held["id"])
    ]
    # Offered, accepted and assigned at the same instant (no accept time charged to Bob), after
    # the withdrawal; then who did it.
    events = (await dispatch.events())[before:]
    assert [event["type"] for event in events] == [
        "assignment.withdrawn.v1",
        "assignment.offered.v1",
        "assignment.accepted.v1",
        "lead.assigned.v1",
        "assignment.reassigned.v1",
    ]
    assert events[0]["data"]["reason"] == "reassigned"
    assert events[0]["data"]["seller_id"] == ana
    assert events[2]["data"]["accepted_at"] == events[1]["data"]["offered_at"]
    assert events[4]["data"]["mode"] == "direct"
    assert events[4]["data"]["reassigned_by"] == manager_token
    assert await dispatch.deliver() == 2
    assert [m.event_type for m in receiver.of("ana")] == [
        "assignment.offered",
        "assignment.withdrawn",
    ]
    assert receiver.of("ana")[-1].payload["data"]["reason"] == "reassigned"
    [assigned] = receiver.of("bob")
    assert assigned.event_type == "assignment.assigned"
    data = assigned.payload["data"]
    assert data["assignment"]["status"] == "accepted"
    assert datetime.fromisoformat(data["deadlines"]["first_contact_by"]) == first_contact_due
    assert data["lead"]["contact"]["phone"] == "+33612345678"
    assert data["callbacks"]["contacted"].endswith(f"/v1/assignments/{held['id']}/contacted")
    assert receiver.rejected == 0
    # Bob works the lead with his call-backs.
    client = await dispatch.seller_client(bob)
    contacted = await client.post(
        f"/v1/assignments/{held['id']}/contacted", json={"channel": "phone"}
    )
    assert contacted.status_code == 200


async def test_a_contacted_lead_moves_with_its_progress_and_follow_ups(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await dispatch.site()
    ana = await _hooked(dispatch, receiver, "ana")
    lead = await dispatch.qualify()
    [offer] = await dispatch.assignments(lead)
    client = await dispatch.seller_client(ana)
    await client.post(f"/v1/assignments/{offer['id']}/accept")
    await client.post(f"/v1/assignments/{offer['id']}/contacted", json={"channel": "phone"})
    [(kind, _, followup_due)] = await dispatch.pending_timers(lead)
    assert kind == "followup"
    clock.advance(hours=2)
    bob = await _hooked(dispatch, receiver, "bob")
    manager, _ = await _manager(dispatch)

    response = await manager.post(
        f"/v1/assignments/{offer['id']}/reassign", json={"seller_id": bob, "mode": "direct"}
    )

    assert response.status_code == 200, response.text
    held = response.json()["assignment"]
    assert held["status"] == "contacted"
    assert held["contacted_at"] == offer["offered_at"]  # the first contact, carried
    assert held["previous_assignment_id"] == offer["id"]
    assert held["first_contact_due_at"] is None  # contacted already: no first contact due
    # Ana's follow-up is cancelled; Bob's comes at the same moment (J+1 after the contact).
    assert await dispatch.pending_timers(lead) == [("followup", held["id"], followup_due)]
    await dispatch.deliver()
    [assigned] = receiver.of("bob")
    progress = assigned.payload["data"]["progress"]
    assert progress["previous_assignment_id"] == offer["id"]
    assert progress["contact_channel"] == "phone"
    deadlines = assigned.payload["data"]["deadlines"]
    assert list(deadlines) == ["next_followup_at"]
    assert datetime.fromisoformat(deadlines["next_followup_at"]) == followup_due
    # Ana may no longer act on it.
    late = await client.post(f"/v1/assignments/{offer['id']}/lost", json={"reason": "other"})
    assert late.status_code == 409


async def test_back_to_routing_never_offers_it_to_the_old_seller_in_this_round(
    dispatch: DispatchApi, receiver: Receiver
) -> None:
    await dispatch.site()
    ana = await _hooked(dispatch, receiver, "ana", capacity=1)
    lead = await dispatch.qualify()
    [offer] = await dispatch.assignments(lead)
    client = await dispatch.seller_client(ana)
    await client.post(f"/v1/assignments/{offer['id']}/accept")
    cleo = await _hooked(dispatch, receiver, "cleo")
    other = await dispatch.qualify()  # Ana is full: Cléo gets it, and is busier than Ana after
    assert (await dispatch.assignments(other))[0]["seller_id"] == cleo
    manager, _ = await _manager(dispatch)

    response = await manager.post(f"/v1/assignments/{offer['id']}/reassign", json={})

    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["assignment"]["seller_id"] == cleo
    assert moved["assignment"]["status"] == "offered"
    assert moved["lead_status"] == "offered"
    assert await dispatch.open_count(ana) == 0
    [event] = await dispatch.events("assignment.reassigned.v1")
    assert (event["data"]["mode"], event["data"]["seller_id"]) == ("routing", cleo)
    # Cléo declines: nobody else but Ana, who is out of this round → escalated.
    cleo_client = await dispatch.seller_client(cleo)
    declined = await cleo_client.post(
        f"/v1/assignments/{moved['assignment']['id']}/decline", json={"reason": "busy"}
    )
    assert declined.status_code == 200
    assert (await dispatch.lead(lead))["status"] == "unassigned"
    assert sorted(a["seller_id"] for a in await dispatch.assignments(lead)) == sorted([ana, cleo])


async def test_all_leads_of_an_absent_seller_go_to_a_colleague(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await dispatch.site()
    ana = await _hooked(dispatch, receiver, "ana")
    client = await dispatch.seller_client(ana)
    leads = []
    for _ in range(3):
        leads.append(await dispatch.qualify())
        clock.advance(minutes=1)
    offers = [(await dispatch.assignments(lead))[0] for lead in leads]
    # One offered only, one accepted, one with an appointment.
    await client.post(f"/v1/assignments/{offers[1]['id']}/accept")
    await client.post(f"/v1/assignments/{offers[2]['id']}/accept")
    appointment_at = (clock.now + timedelta(days=2)).isoformat()
    await client.post(
        f"/v1/assignments/{offers[2]['id']}/appointment", json={"appointment_at": appointment_at}
    )
    bob = await _hooked(dispatch, receiver, "bob", capacity=2)
    manager, manager_token = await _manager(dispatch)
    absence = {
        "start": clock.now.isoformat(),
        "end": (clock.now + timedelta(days=5)).isoformat(),
    }
    body = {"seller_id": bob, "mode": "direct", "absence": absence}

    # Bob has room for 2 of the 3: refused as a whole, nothing moved.
    full = await manager.post(f"/v1/sellers/{ana}/reassign", json=body)
    assert full.status_code == 409
    assert full.json()["type"] == "/problems/seller-at-capacity"
    assert await dispatch.open_count(ana) == 3
    assert (await dispatch.admin.get(f"/v1/sellers/{ana}")).json()["absences"] == []

    response = await manager.post(
        f"/v1/sellers/{ana}/reassign", json=body | {"allow_over_capacity": True}
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["absence_recorded"] is True
    assert [item["lead_id"] for item in result["moved"]] == leads  # oldest first
    statuses = [item["assignment"]["status"] for item in result["moved"]]
    assert statuses == ["accepted", "accepted", "appointment"]
    moved_at = result["moved"][2]["assignment"]["appointment_at"]
    assert datetime.fromisoformat(moved_at) == datetime.fromisoformat(appointment_at)
    assert (await dispatch.open_count(ana), await dispatch.open_count(bob)) == (0, 3)
    stored = (await dispatch.admin.get(f"/v1/sellers/{ana}")).json()["absences"]
    assert len(stored) == 1
    events = await dispatch.events("assignment.reassigned.v1")
    assert {(e["data"]["reason"], e["data"]["reassigned_by"]) for e in events} == {
        ("absence", manager_token)
    }
    withdrawn = await dispatch.events("assignment.withdrawn.v1")
    assert sorted(e["data"]["assignment_id"] for e in withdrawn) == sorted(o["id"] for o in offers)
    # No timer of Ana's is left; the appointment lead has none (the appointment is next).
    for lead in leads:
        owners = {owner for _, owner, _ in await dispatch.pending_timers(lead)}
        assert not owners & {offer["id"] for offer in offers}
    await dispatch.deliver()
    assert [m.event_type for m in receiver.of("ana")].count("assignment.withdrawn") == 3
    assert [m.event_type for m in receiver.of("bob")] == ["assignment.assigned"] * 3
    # Ana is absent (and Bob full): routing skips her meanwhile.
    newcomer = await dispatch.qualify()
    assert await dispatch.assignments(newcomer) == []
    assert (await dispatch.lead(newcomer))["status"] == "unassigned"


async def test_refusals_are_problems(dispatch: DispatchApi, clock: Clock) -> None:
    await dispatch.site()
    ana = (await dispatch.seller("Ana"))["id"]
    lead = await dispatch.qualify()
    [offer] = await dispatch.assignments(lead)
    assert offer["seller_id"] == ana
    busy = (await dispatch.seller("Busy", capacity=1))["id"]
    away = (
        await dispatch.seller(
            "Away",
            absences=[
                {
                    "start": clock.now.isoformat(),
                    "end": (clock.now + timedelta(days=1)).isoformat(),
                }
            ],
        )
    )["id"]
    resting = (await dispatch.seller("Resting", active=False))["id"]
    filler = await dispatch.qualify()  # to Busy, the least loaded: her only slot
    assert (await dispatch.assignments(filler))[0]["seller_id"] == busy
    assert await dispatch.open_count(busy) == 1
    manager, _ = await _manager(dispatch)

    async def problem(path: str, body: dict[str, Any], status: int, kind: str) -> None:
        response = await manager.post(path, json=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == f"/problems/{kind}"

    assign = f"/v1/leads/{lead}/assign"
    await problem("/v1/leads/nope/assign", {"seller_id": ana}, 404, "not-found")
    await problem(assign, {"seller_id": "nope"}, 404, "not-found")
    await problem(assign, {"seller_id": away}, 409, "seller-unavailable")
    await problem(assign, {"seller_id": resting}, 409, "seller-unavailable")
    await problem(assign, {"seller_id": ana}, 409, "seller-unavailable")  # offered to her already
    await problem(assign, {"seller_id": busy}, 409, "seller-at-capacity")
    await problem(assign, {"seller_id": busy, "mode": "later"}, 422, "validation-error")
    await problem(assign, {"seller_id": busy, "extra": 1}, 422, "validation-error")
    forced = await manager.post(assign, json={"seller_id": busy, "allow_over_capacity": True})
    assert forced.status_code == 200
    assert await dispatch.open_count(busy) == 2
    held = forced.json()["assignment"]["id"]
    busy_client = await dispatch.seller_client(busy)
    assert (await busy_client.post(f"/v1/assignments/{held}/accept")).status_code == 200
    await problem(assign, {"seller_id": ana}, 409, "lead-held")
    reassign = f"/v1/assignments/{held}/reassign"
    await problem("/v1/assignments/nope/reassign", {}, 404, "not-found")
    await problem(reassign, {"seller_id": busy}, 409, "seller-unavailable")
    await problem(reassign, {"seller_id": "nope"}, 404, "not-found")
    await problem(
        f"/v1/assignments/{offer['id']}/reassign", {"seller_id": ana}, 409, "illegal-transition"
    )
    await busy_client.post(f"/v1/assignments/{held}/lost", json={"reason": "other"})
    await problem(assign, {"seller_id": ana}, 409, "lead-closed")
    await problem(reassign, {}, 409, "illegal-transition")
    await problem("/v1/sellers/nope/reassign", {}, 404, "not-found")
    await problem(f"/v1/sellers/{ana}/reassign", {"seller_id": ana}, 409, "seller-unavailable")
    overlapping = {
        "start": (clock.now + timedelta(hours=1)).isoformat(),
        "end": (clock.now + timedelta(days=3)).isoformat(),
    }
    await problem(f"/v1/sellers/{away}/reassign", {"absence": overlapping}, 422, "validation-error")
    naive = {"start": "2026-12-01T10:00:00", "end": "2026-12-02T10:00:00"}
    await problem(f"/v1/sellers/{ana}/reassign", {"absence": naive}, 422, "validation-error")


@pytest.mark.parametrize("role", ["seller", "operator"])
async def test_only_managers_move_leads(dispatch: DispatchApi, role: str) -> None:
    await dispatch.site()
    ana = (await dispatch.seller("Ana"))["id"]
    lead = await dispatch.qualify()
    [offer] = await dispatch.assignments(lead)
    if role == "seller":
        client = await dispatch.seller_client(ana)
    else:
        client = await dispatch.client_for_roles(role)
    for path, body in (
        (f"/v1/leads/{lead}/assign", {"seller_id": ana}),
        (f"/v1/assignments/{offer['id']}/reassign", {}),
        (f"/v1/sellers/{ana}/reassign", {}),
    ):
        response = await client.post(path, json=body)
        assert response.status_code == 403, path
        assert response.headers["content-type"] == PROBLEM
    assert (await dispatch.assignments(lead))[0]["status"] == "offered"


async def test_the_openapi_document_names_the_moves_and_their_problems(
    dispatch: DispatchApi,
) -> None:
    paths = (await dispatch.admin.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/leads/{lead_id}/assign",
        "/v1/assignments/{assignment_id}/reassign",
        "/v1/sellers/{seller_id}/reassign",
    ):
        responses = paths[path]["post"]["responses"]
        assert {"200", "401", "403", "404", "409", "422"} <= set(responses), path
        assert "problem+json" in str(responses["409"]["content"])
