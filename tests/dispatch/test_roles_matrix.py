"""Who may call the endpoints issue 14 added to dispatch: every role (and no token) against each
route. "allowed" means the request got past authorization (any answer but 401 and 403); the
bodies are chosen so an allowed call changes nothing (an unknown seller, a transition the status
refuses)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.dispatch.conftest import DispatchApi

ROLES = ("admin", "manager", "operator", "seller", "source", "anonymous")


async def test_the_authorization_matrix_of_the_new_endpoints(dispatch: DispatchApi) -> None:
    await dispatch.site()
    ana = (await dispatch.seller("Ana"))["id"]
    lead = await dispatch.qualify()
    [offer] = await dispatch.assignments(lead)
    clients: dict[str, httpx.AsyncClient] = {
        "admin": dispatch.admin,
        "seller": await dispatch.seller_client(ana),
        "anonymous": dispatch.client_with(""),
    }
    for role in ("manager", "operator", "source"):
        clients[role] = await dispatch.client_for_roles(role)
    future = {"appointment_at": "2027-01-05T10:00:00+01:00"}
    unknown = {"seller_id": "nope"}
    matrix: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
        ("POST", f"/v1/leads/{lead}/assign", unknown, {"admin", "manager"}),
        ("POST", f"/v1/assignments/{offer['id']}/reassign", unknown, {"admin", "manager"}),
        ("POST", f"/v1/sellers/{ana}/reassign", unknown, {"admin", "manager"}),
        ("GET", f"/v1/leads/{lead}/appointments", None, {"admin", "manager", "operator"}),
        ("POST", "/v1/calendars/republish", None, {"admin"}),
        # "me" is a seller of the directory: the admin's token is not one.
        ("GET", "/v1/sellers/me/assignments", None, {"seller"}),
        ("GET", "/v1/sellers/me/events", None, {"seller"}),
        # The seller's own call-backs (an admin may act for support); refused transitions here.
        ("POST", f"/v1/assignments/{offer['id']}/reschedule", future, {"admin", "seller"}),
        ("POST", f"/v1/assignments/{offer['id']}/no-show", None, {"admin", "seller"}),
        (
            "POST",
            f"/v1/assignments/{offer['id']}/hand-back",
            {"reason": "other"},
            {"admin", "seller"},
        ),
    ]
    seen: dict[tuple[str, str], int] = {}
    for method, path, body, allowed in matrix:
        for role in ROLES:
            response = await clients[role].request(method, path, json=body)
            seen[(path, role)] = response.status_code
            if role in allowed:
                assert response.status_code not in (401, 403), (path, role, response.text)
            else:
                expected = 401 if role == "anonymous" else 403
                assert response.status_code == expected, (path, role, response.text)
                assert response.headers["content-type"] == "application/problem+json"
    # Nothing moved: the offer is still Ana's.
    assert [a["status"] for a in await dispatch.assignments(lead)] == ["offered"]
    assert seen[(f"/v1/assignments/{offer['id']}/no-show", "seller")] == 409
