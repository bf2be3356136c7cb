"""Call-backs state machine (409 problems), ownership (403), unknown ids (404), roles, and bad
directory input (422): never a 500."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.dispatch.conftest import DispatchApi
from tests.support.clock import Clock

PROBLEM = "application/problem+json"


async def _offer(dispatch: DispatchApi) -> tuple[str, dict[str, object]]:
    await dispatch.site()
    seller = await dispatch.seller("A")
    lead = await dispatch.qualify()
    return lead, (await dispatch.assignments(lead))[0] | {"seller": seller}


async def test_illegal_transitions_are_409_problems(dispatch: DispatchApi, clock: Clock) -> None:
    _, offer = await _offer(dispatch)
    seller = offer["seller"]
    assert isinstance(seller, dict)
    client = await dispatch.seller_client(seller["id"])
    url = f"/v1/assignments/{offer['id']}"
    for action, body in (
        ("contacted", {"channel": "phone"}),
        ("sold", None),
        ("lost", {"reason": "other"}),
        ("appointment", {"appointment_at": (clock.now + timedelta(days=1)).isoformat()}),
    ):
        response = await client.post(f"{url}/{action}", json=body)
        assert response.status_code == 409, action
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "/problems/illegal-transition"
        assert problem["status_now"] == "offered"
    assert (await client.post(f"{url}/accept")).status_code == 200
    assert (await client.post(f"{url}/accept")).status_code == 409
    assert (await client.post(f"{url}/decline", json={"reason": "busy"})).status_code == 409
    assert (await client.post(f"{url}/contacted", json={"channel": "sms"})).status_code == 200
    past = (clock.now - timedelta(hours=1)).isoformat()
    assert (
        await client.post(f"{url}/appointment", json={"appointment_at": past})
    ).status_code == 422
    assert (
        await client.post(f"{url}/lost", json={"reason": "bought_elsewhere"})
    ).status_code == 200
    assert (await client.post(f"{url}/sold")).status_code == 409
    assert (await client.post(f"{url}/contacted", json={"channel": "sms"})).status_code == 409
    lost = (await dispatch.events("lead.lost.v1"))[-1]["data"]
    assert lost["reason"] == "bought_elsewhere"
    assert len(await dispatch.events("lead.contacted.v1")) == 1


async def test_late_accept_is_refused(dispatch: DispatchApi, clock: Clock) -> None:
    _, offer = await _offer(dispatch)
    seller = offer["seller"]
    assert isinstance(seller, dict)
    client = await dispatch.seller_client(seller["id"])
    clock.advance(minutes=11)  # past the deadline, the timer has not fired yet
    response = await client.post(f"/v1/assignments/{offer['id']}/accept")
    assert response.status_code == 409


async def test_another_sellers_assignment_is_403_unknown_is_404(dispatch: DispatchApi) -> None:
    _, offer = await _offer(dispatch)
    intruder = await dispatch.seller("B")
    client = await dispatch.seller_client(intruder["id"])
    response = await client.post(f"/v1/assignments/{offer['id']}/accept")
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert (await client.post("/v1/assignments/nope/accept")).status_code == 404
    assert (await client.get(f"/v1/assignments/{offer['id']}")).status_code == 403
    assert (await dispatch.admin.get("/v1/sellers/nope")).status_code == 404
    assert (await dispatch.admin.get("/v1/sites/nope")).status_code == 404
    assert (await dispatch.admin.post("/v1/sellers/nope/token")).status_code == 404
    unknown_site = await dispatch.admin.post(
        "/v1/sellers", json={"display_name": "X", "mode": "in_store", "site_id": "nowhere"}
    )
    assert unknown_site.status_code == 404


async def test_roles(dispatch: DispatchApi) -> None:
    _, offer = await _offer(dispatch)
    seller = offer["seller"]
    assert isinstance(seller, dict)
    seller_client = await dispatch.seller_client(seller["id"])
    manager = await dispatch.client_for_roles("manager")
    operator = await dispatch.client_for_roles("operator")
    # Directory: admin only.
    assert (await manager.get("/v1/sellers")).status_code == 403
    assert (await seller_client.post("/v1/sites", json={})).status_code == 403
    # Unassigned list and board: managers.
    assert (await manager.get("/v1/unassigned")).status_code == 200
    assert (await manager.get("/v1/board")).status_code == 200
    assert (await seller_client.get("/v1/unassigned")).status_code == 403
    assert (await operator.get("/v1/board")).status_code == 403
    # Call-backs: sellers (a manager without a seller record is refused).
    assert (await manager.post(f"/v1/assignments/{offer['id']}/accept")).status_code == 403
    assert (await seller_client.post(f"/v1/assignments/{offer['id']}/accept")).status_code == 200
    # No token: 401 problem.
    anonymous = dispatch.client_with("")
    response = await anonymous.get("/v1/board")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


SITE = {"id": "x", "name": "X", "postcode": "69003", "opening_hours": "mon 09:00-12:00"}
SELLER = {"display_name": "X", "mode": "in_store", "site_id": "lyon"}
BACKWARDS = [{"start": "2026-11-24T10:00:00+01:00", "end": "2026-11-24T09:00:00+01:00"}]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/sites", {**SITE, "opening_hours": "mon 09:00-12:00,11:00-13:00"}),
        ("/v1/sites", {**SITE, "opening_hours": "funday 9-5"}),
        ("/v1/sites", {**SITE, "postcode": "690"}),
        ("/v1/sites", {**SITE, "timezone": "Mars/Olympus"}),
        ("/v1/sites", {**SITE, "fallback_after_minutes": -5}),
        ("/v1/sellers", {**SELLER, "shifts": "mon 09:00-13:00,12:00-18:00"}),
        ("/v1/sellers", {**SELLER, "site_id": None}),
        ("/v1/sellers", {**SELLER, "capacity": 0}),
        ("/v1/sellers", {**SELLER, "absences": BACKWARDS}),
        ("/v1/schedules", {"accept_within_minutes": -1}),
        ("/v1/schedules", {"first_contact_within_minutes": 0}),
        ("/v1/schedules", {"followup_days": [3, 1]}),
    ],
)
async def test_invalid_directory_input_is_422(
    dispatch: DispatchApi, path: str, body: dict[str, object]
) -> None:
    await dispatch.site()
    response = await dispatch.admin.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"]


async def test_schedules_apply_most_specific_first(dispatch: DispatchApi, clock: Clock) -> None:
    await dispatch.site()
    await dispatch.seller("A")
    assert (
        await dispatch.admin.post("/v1/schedules", json={"accept_within_minutes": 30})
    ).status_code == 201
    assert (
        await dispatch.admin.post(
            "/v1/schedules",
            json={"source": "leboncoin", "site_id": "lyon", "accept_within_minutes": 5},
        )
    ).status_code == 201
    duplicate = await dispatch.admin.post("/v1/schedules", json={"accept_within_minutes": 20})
    assert duplicate.status_code == 409
    lead = await dispatch.qualify(source="leboncoin")
    offer = (await dispatch.assignments(lead))[0]
    assert datetime.fromisoformat(offer["accept_due_at"]) == clock.now + timedelta(minutes=5)
    other = await dispatch.qualify(source="facebook")
    offer = (await dispatch.assignments(other))[0]
    assert datetime.fromisoformat(offer["accept_due_at"]) == clock.now + timedelta(minutes=30)
    listed = (await dispatch.admin.get("/v1/schedules")).json()
    assert len(listed) == 2


async def test_the_sites_schedule_wins_over_the_sources(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    await dispatch.site("paris", postcode="75011")
    await dispatch.seller("A")
    await dispatch.seller("B", site_id="paris")
    for scope, minutes in (({}, 30), ({"source": "facebook"}, 9), ({"site_id": "lyon"}, 7)):
        response = await dispatch.admin.post(
            "/v1/schedules", json={**scope, "accept_within_minutes": minutes}
        )
        assert response.status_code == 201
    for source, site, minutes in (
        ("facebook", "lyon", 7),
        ("facebook", "paris", 9),
        ("leboncoin", "paris", 30),
        ("leboncoin", "lyon", 7),
    ):
        lead = await dispatch.qualify(source=source, site=site)
        offer = (await dispatch.assignments(lead))[0]
        due = datetime.fromisoformat(offer["accept_due_at"])
        assert due == clock.now + timedelta(minutes=minutes), (source, site)


async def test_naive_datetimes_are_422_not_500(dispatch: DispatchApi) -> None:
    _, offer = await _offer(dispatch)
    seller = offer["seller"]
    assert isinstance(seller, dict)
    client = await dispatch.seller_client(seller["id"])
    await client.post(f"/v1/assignments/{offer['id']}/accept")
    naive = await client.post(
        f"/v1/assignments/{offer['id']}/appointment",
        json={"appointment_at": "2026-12-01T10:00:00"},
    )
    assert naive.status_code == 422
    recover = await dispatch.admin.post(
        f"/v1/sellers/{seller['id']}/webhook/recover", json={"since": "2026-11-01T00:00:00"}
    )
    assert recover.status_code == 422
    unknown_site = await client.post(
        f"/v1/assignments/{offer['id']}/appointment",
        json={"appointment_at": "2026-12-01T10:00:00+01:00", "site_id": "nowhere"},
    )
    assert unknown_site.status_code == 404
    assert unknown_site.headers["content-type"] == PROBLEM
