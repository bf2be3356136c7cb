"""Booleans are ``true`` or ``false`` and instants lie within 2000-2100 (issue 11, items 2 and
6): ``PATCH /v1/sellers/{id}`` took ``"active": 0``; an instant at the datetime limits
overflowed the UTC column. Each is a 422 naming the field, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dispatch.conftest import DispatchApi

PROBLEM = "application/problem+json"
NOT_BOOLEANS = [0, 1, "true", "false", "yes", "on", 1.0]
EXTREMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2101-01-01T00:00:00Z"]


def _fields(answer: Any) -> list[str]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    return [error["field"] for error in answer.json()["errors"]]


@pytest.mark.parametrize("value", NOT_BOOLEANS)
async def test_a_boolean_is_true_or_false_only(dispatch: DispatchApi, value: object) -> None:
    await dispatch.site()
    seller = await dispatch.seller("Ana")
    patched = await dispatch.admin.patch(f"/v1/sellers/{seller['id']}", json={"active": value})
    assert _fields(patched) == ["active"]
    assert (await dispatch.admin.get(f"/v1/sellers/{seller['id']}")).json()["active"] is True
    body = {"display_name": "Bob", "mode": "full_web", "active": value}
    assert _fields(await dispatch.admin.post("/v1/sellers", json=body)) == ["active"]
    site = {"id": "x", "name": "X", "postcode": "69003", "opening_hours": "mon 09:00-12:00"}
    created = await dispatch.admin.post("/v1/sites", json={**site, "full_web_fallback": value})
    assert _fields(created) == ["full_web_fallback"]
    lead = await dispatch.qualify()
    assign = {"seller_id": seller["id"], "allow_over_capacity": value}
    moved = await dispatch.admin.post(f"/v1/leads/{lead}/assign", json=assign)
    assert _fields(moved) == ["allow_over_capacity"]


async def test_true_and_false_still_work(dispatch: DispatchApi) -> None:
    await dispatch.site()
    seller = await dispatch.seller("Ana")
    patched = await dispatch.admin.patch(f"/v1/sellers/{seller['id']}", json={"active": False})
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False


@pytest.mark.parametrize("instant", EXTREMES)
async def test_instants_beyond_the_bounds_are_422_naming_them(
    dispatch: DispatchApi, instant: str
) -> None:
    await dispatch.site()
    seller = await dispatch.seller("Ana")
    absence = {"start": "2026-11-24T10:00:00+01:00", "end": instant}
    patched = await dispatch.admin.patch(
        f"/v1/sellers/{seller['id']}", json={"absences": [absence]}
    )
    assert _fields(patched) == ["absences.0.end"]
    recover = await dispatch.admin.post(
        f"/v1/sellers/{seller['id']}/webhook/recover", json={"since": instant}
    )
    assert _fields(recover) == ["since"]
    lead = await dispatch.qualify()
    [offer] = await dispatch.assignments(lead)
    client = await dispatch.seller_client(seller["id"])
    await client.post(f"/v1/assignments/{offer['id']}/accept")
    appointment = await client.post(
        f"/v1/assignments/{offer['id']}/appointment", json={"appointment_at": instant}
    )
    assert _fields(appointment) == ["appointment_at"]


@pytest.mark.parametrize("value", [False, True, "120", 1.5])
async def test_an_integer_is_a_json_number_only(dispatch: DispatchApi, value: object) -> None:
    site = {"id": "x", "name": "X", "postcode": "69003", "opening_hours": "mon 09:00-12:00"}
    created = await dispatch.admin.post("/v1/sites", json={**site, "fallback_after_minutes": value})
    assert _fields(created) == ["fallback_after_minutes"]
    assert (await dispatch.admin.get("/v1/sites/x")).status_code == 404
    await dispatch.site()
    seller = await dispatch.seller("Ana")
    patched = await dispatch.admin.patch(f"/v1/sellers/{seller['id']}", json={"capacity": value})
    assert _fields(patched) == ["capacity"]
    assert (await dispatch.admin.get(f"/v1/sellers/{seller['id']}")).json()["capacity"] == 10
