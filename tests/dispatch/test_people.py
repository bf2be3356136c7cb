"""The people directory (issue 14, people and sign-on): named people and machines with roles,
sites and a single sign-on identity; their tokens shown once, published as hashes, refused by
dispatch from the very request after their revocation; deactivation; the sellers' tools; the
admin-only authorization of every route; events on ``vo.access`` without a token in clear."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from dispatch.directory.repository import DirectoryRepository
from dispatch.models import infra
from shared.auth import store_token
from shared.db.session import session_scope
from shared.oidc import actor_id
from tests.dispatch.conftest import DispatchApi
from tests.support.clock import Clock

PROBLEM = "application/problem+json"
ISSUER = "https://login.example-group.test/realms/dealers"


async def create(dispatch: DispatchApi, **body: Any) -> dict[str, Any]:
    body.setdefault("display_name", "Paul Opérateur")
    body.setdefault("roles", ["operator"])
    response = await dispatch.admin.post("/v1/people", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def issue(dispatch: DispatchApi, person_id: str, **body: Any) -> dict[str, Any]:
    response = await dispatch.admin.post(f"/v1/people/{person_id}/tokens", json=body or None)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def outbox_values(dispatch: DispatchApi) -> list[bytes]:
    async with dispatch.runtime.session_factory() as session:
        return list((await session.scalars(select(infra.outbox_event.c.value))).all())


async def test_a_person_s_token_works_at_once_and_stops_with_its_revocation(
    dispatch: DispatchApi,
) -> None:
    paul = await create(dispatch, roles=["manager"], sites=["lyon", "lyon"])
    assert (paul["kind"], paul["roles"], paul["sites"], paul["active"], paul["version"]) == (
        "person",
        ["manager"],
        ["lyon"],
        True,
        1,
    )
    issued = await issue(dispatch, paul["id"], label="laptop")
    token = issued["token"]
    assert token.startswith("vo_")
    assert issued["person_id"] == paul["id"]

    as_paul = dispatch.client_with(token)
    assert (await as_paul.get("/v1/board")).status_code == 200
    assert (await as_paul.get("/v1/sites")).status_code == 403  # a manager, not an admin

    revoked = await dispatch.admin.delete(f"/v1/people/{paul['id']}/tokens/{issued['id']}")
    assert revoked.status_code == 204
    refused = await as_paul.get("/v1/board")  # the very next request
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM
    again = await dispatch.admin.delete(f"/v1/people/{paul['id']}/tokens/{issued['id']}")
    assert again.status_code == 204  # idempotent

    listed = (await dispatch.admin.get(f"/v1/people/{paul['id']}/tokens")).json()
    assert [(t["id"], t["label"], t["revoked_at"] is not None) for t in listed] == [
        (issued["id"], "laptop", True)
    ]
    assert "token" not in listed[0]
    assert "token_hash" not in json.dumps(listed)

    events = await dispatch.events()
    access = [event for event in events if event["type"].startswith("access.")]
    assert [event["type"] for event in access] == [
        "access.person-changed.v1",
        "access.token-issued.v1",
        "access.token-revoked.v1",
    ]
    assert access[1]["data"]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert access[0]["data"]["name"] == "Paul Opérateur"
    # The token itself is never staged anywhere, in any event.
    assert all(token.encode() not in value for value in await outbox_values(dispatch))


async def test_a_change_of_roles_applies_to_the_next_request(dispatch: DispatchApi) -> None:
    paul = await create(dispatch, roles=["operator"])
    as_paul = dispatch.client_with((await issue(dispatch, paul["id"]))["token"])
    assert (await as_paul.get("/v1/board")).status_code == 403  # cached: an operator
    promoted = await dispatch.admin.patch(f"/v1/people/{paul['id']}", json={"roles": ["manager"]})
    assert promoted.status_code == 200
    assert promoted.json()["version"] == 2
    assert (await as_paul.get("/v1/board")).status_code == 200
    unchanged = await dispatch.admin.patch(f"/v1/people/{paul['id']}", json={"roles": ["manager"]})
    assert unchanged.json()["version"] == 2  # nothing changed: no new version, no event
    assert len(await dispatch.events("access.person-changed.v1")) == 2


async def test_deactivation_revokes_every_token_and_reactivation_needs_new_ones(
    dispatch: DispatchApi,
) -> None:
    paul = await create(dispatch, roles=["manager"])
    first = dispatch.client_with((await issue(dispatch, paul["id"]))["token"])
    second = dispatch.client_with((await issue(dispatch, paul["id"], label="phone"))["token"])
    assert (await first.get("/v1/board")).status_code == 200

    off = await dispatch.admin.patch(f"/v1/people/{paul['id']}", json={"active": False})
    assert off.status_code == 200
    assert (off.json()["active"], off.json()["deactivated_at"] is not None) == (False, True)
    assert (await first.get("/v1/board")).status_code == 401
    assert (await second.get("/v1/board")).status_code == 401
    inactive = await dispatch.admin.post(f"/v1/people/{paul['id']}/tokens", json={})
    assert inactive.status_code == 409
    assert inactive.json()["type"] == "/problems/person-inactive"

    on = await dispatch.admin.patch(f"/v1/people/{paul['id']}", json={"active": True})
    assert on.json()["active"] is True
    assert (await first.get("/v1/board")).status_code == 401  # revoked for good
    fresh = dispatch.client_with((await issue(dispatch, paul["id"]))["token"])
    assert (await fresh.get("/v1/board")).status_code == 200
    changes = [e["data"]["change"] for e in await dispatch.events("access.person-changed.v1")]
    assert changes == ["created", "deactivated", "reactivated"]
    assert len(await dispatch.events("access.token-revoked.v1")) == 2


async def test_a_token_stops_at_its_expiry(dispatch: DispatchApi, clock: Clock) -> None:
    paul = await create(dispatch, roles=["manager"])
    expires = (clock.now + timedelta(days=1)).isoformat()
    client = dispatch.client_with((await issue(dispatch, paul["id"], expires_at=expires))["token"])
    assert (await client.get("/v1/board")).status_code == 200
    clock.advance(days=1)
    assert (await client.get("/v1/board")).status_code == 401  # even from the cache
    past = (clock.now - timedelta(minutes=1)).isoformat()
    response = await dispatch.admin.post(
        f"/v1/people/{paul['id']}/tokens", json={"expires_at": past}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "expires_at"


async def test_single_sign_on_identity_and_invalid_bodies(dispatch: DispatchApi) -> None:
    alice = await create(
        dispatch, display_name="Alice", roles=["dpo"], sso={"issuer": ISSUER, "subject": "s-1"}
    )
    # Her id is the actor id the services already recorded for her sign-ins.
    assert alice["id"] == actor_id(ISSUER, "s-1")
    assert alice["sso"] == {"issuer": ISSUER, "subject": "s-1"}
    [event] = await dispatch.events("access.person-changed.v1")
    assert event["data"]["sso_key"] == alice["id"]
    assert "s-1" not in json.dumps(event["data"])  # the subject stays in dispatch

    taken = await dispatch.admin.post(
        "/v1/people",
        json={
            "display_name": "X",
            "roles": ["operator"],
            "sso": {"issuer": ISSUER, "subject": "s-1"},
        },
    )
    assert taken.status_code == 409
    assert taken.json()["type"] == "/problems/person-conflict"
    no_issuer = await dispatch.admin.post(
        "/v1/people", json={"display_name": "X", "roles": ["operator"], "sso": {"subject": "s"}}
    )
    assert no_issuer.status_code == 422  # no DISPATCH_OIDC_ISSUER to default to
    invalid: list[dict[str, Any]] = [
        {"display_name": "X", "roles": []},
        {"display_name": "X", "roles": ["boss"]},
        {"display_name": "", "roles": ["operator"]},
        {"display_name": "X", "roles": ["seller"]},  # a seller person needs its seller
        {"display_name": "X", "roles": ["operator"], "seller_id": "s"},
        {"display_name": "X", "roles": ["source"], "kind": "machine", "sso": {"subject": "s"}},
        {"display_name": "X", "roles": ["operator"], "sites": ["Not A Site"]},
        {"display_name": "X", "roles": ["operator"], "token": "vo_mine"},
    ]
    for body in invalid:
        response = await dispatch.admin.post("/v1/people", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM
    unknown_seller = await dispatch.admin.post(
        "/v1/people", json={"display_name": "X", "roles": ["seller"], "seller_id": "nope"}
    )
    assert unknown_seller.status_code == 404
    assert (await dispatch.admin.get("/v1/people/nope")).status_code == 404
    assert (await dispatch.admin.patch("/v1/people/nope", json={})).status_code == 404
    assert (await dispatch.admin.delete(f"/v1/people/{alice['id']}/tokens/nope")).status_code == 404

    await create(dispatch, display_name="Bea")
    page = (await dispatch.admin.get("/v1/people", params={"limit": 1})).json()
    assert len(page["items"]) == 1
    assert page["next_after"] == page["items"][0]["id"]
    inactive = (await dispatch.admin.get("/v1/people", params={"active": False})).json()
    assert inactive["items"] == []


async def test_sellers_act_through_their_person_or_their_tool(dispatch: DispatchApi) -> None:
    await dispatch.site()
    ana = (await dispatch.seller("Ana"))["id"]
    lead = await dispatch.qualify()
    [offer] = await dispatch.assignments(lead)
    assert offer["seller_id"] == ana

    # The seller's tool token (directory route): held by a machine person acting for Ana.
    tool = await dispatch.seller_client(ana)
    assert (await tool.get("/v1/sellers/me/assignments")).status_code == 200
    people = (await dispatch.admin.get("/v1/people", params={"seller_id": ana})).json()["items"]
    assert [(p["kind"], p["roles"], p["display_name"]) for p in people] == [
        ("machine", ["seller"], "Ana")
    ]
    # A new tool token replaces the previous one: the old one is refused at once.
    replacement = await dispatch.seller_client(ana)
    assert (await tool.get("/v1/sellers/me/assignments")).status_code == 401
    assert (await replacement.get("/v1/sellers/me/assignments")).status_code == 200

    # A token issued before people existed (seller.token_id, dispatch's own) is revoked too.
    legacy = "vo_legacy-seller-token"
    async with session_scope(dispatch.runtime.session_factory) as session:
        legacy_id = await store_token(
            session, infra.api_token, token=legacy, name=f"seller:{ana}", roles=["seller"]
        )
        seller = await DirectoryRepository(session).seller_for_update(ana)
        assert seller is not None
        seller.token_id = legacy_id
    as_legacy = dispatch.client_with(legacy)
    assert (await as_legacy.get("/v1/sellers/me/assignments")).status_code == 200
    await dispatch.seller_client(ana)
    assert (await as_legacy.get("/v1/sellers/me/assignments")).status_code == 401

    # Ana herself, a named person with the seller role, accepts her offer.
    person = await create(dispatch, display_name="Ana Martin", roles=["seller"], seller_id=ana)
    as_ana = dispatch.client_with((await issue(dispatch, person["id"]))["token"])
    accepted = await as_ana.post(f"/v1/assignments/{offer['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    # Moved to another seller's record, her token acts for that seller only.
    bob = (await dispatch.seller("Bob"))["id"]
    await dispatch.admin.patch(f"/v1/people/{person['id']}", json={"seller_id": bob})
    contacted = await as_ana.post(
        f"/v1/assignments/{offer['id']}/contacted", json={"channel": "phone"}
    )
    assert contacted.status_code == 403


async def test_republication_sends_everyone_again_without_tokens(dispatch: DispatchApi) -> None:
    paul = await create(dispatch, roles=["manager"])
    kept = await issue(dispatch, paul["id"])
    gone = await issue(dispatch, paul["id"])
    await dispatch.admin.delete(f"/v1/people/{paul['id']}/tokens/{gone['id']}")
    before = len(await dispatch.events())
    published = await dispatch.admin.post("/v1/people/republish")
    assert published.json() == {"people": 1, "tokens": 2}
    again = (await dispatch.events())[before:]
    assert again[0]["type"] == "access.person-changed.v1"
    assert {(e["type"], e["data"]["token_id"]) for e in again[1:]} == {
        ("access.token-issued.v1", kept["id"]),
        ("access.token-revoked.v1", gone["id"]),
    }
    assert len(again) == 3
    assert again[0]["data"]["change"] == "republished"
    assert again[0]["data"]["version"] == 1
    values = await outbox_values(dispatch)
    assert all(t.encode() not in v for v in values for t in (kept["token"], gone["token"]))


async def test_only_admins_manage_people(dispatch: DispatchApi) -> None:
    await dispatch.site()
    ana = (await dispatch.seller("Ana"))["id"]
    paul = await create(dispatch)
    token = await issue(dispatch, paul["id"])
    clients: dict[str, httpx.AsyncClient] = {
        "admin": dispatch.admin,
        "seller": await dispatch.seller_client(ana),
        "anonymous": dispatch.client_with(""),
    }
    for role in ("manager", "operator", "dpo", "source"):
        clients[role] = await dispatch.client_for_roles(role)
    person = f"/v1/people/{paul['id']}"
    routes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/people", {"display_name": "X", "roles": []}),  # 422 for an admin
        ("GET", "/v1/people", None),
        ("GET", person, None),
        ("PATCH", person, {}),
        ("GET", f"{person}/tokens", None),
        ("POST", f"{person}/tokens", {"expires_at": "2000-01-01T00:00:00Z"}),  # 422
        ("DELETE", f"{person}/tokens/unknown", None),  # 404
        ("POST", "/v1/people/republish", None),
    ]
    for method, path, body in routes:
        for role, client in clients.items():
            response = await client.request(method, path, json=body)
            if role == "admin":
                assert response.status_code not in (401, 403), (path, response.text)
            else:
                expected = 401 if role == "anonymous" else 403
                assert response.status_code == expected, (method, path, role)
                assert response.headers["content-type"] == PROBLEM
    # Nothing was issued or revoked by anyone else.
    tokens = (await dispatch.admin.get(f"{person}/tokens")).json()
    assert [(t["id"], t["revoked_at"]) for t in tokens] == [(token["id"], None)]
