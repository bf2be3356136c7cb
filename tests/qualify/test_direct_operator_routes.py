"""The operators' hot path, ``POST /v1/leads/{lead_id}/claim`` and ``POST /v1/leads/{lead_id}/
qualification`` (JSON), is answered by the request middleware (``shared.direct``), never by
FastAPI's routes; and the direct answers are the FastAPI routes' answers, good and bad input
alike: each request below is sent twice, once with the direct routes switched off."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shared.direct import DirectRoutes
from tests.qualify.conftest import QualifyApi
from tests.qualify.test_api import QUALIFICATION, claimed, outbox

CLAIM = "POST /v1/leads/{lead_id}/claim"
QUALIFY = "POST /v1/leads/{lead_id}/qualification"


@dataclass
class Routing:
    direct: bool = True  # False: every request to the FastAPI routes
    answered: list[str] = field(default_factory=list)  # "METHOD template" of direct answers


@pytest.fixture
def routing(monkeypatch: pytest.MonkeyPatch) -> Routing:
    return switch_direct_routes(monkeypatch)


def switch_direct_routes(monkeypatch: pytest.MonkeyPatch) -> Routing:
    """The direct routes counted, and switched off while ``Routing.direct`` is False."""
    state = Routing()
    find, answer = DirectRoutes.find, DirectRoutes.answer

    def switched(self: DirectRoutes, scope: Any, content_type: str | None) -> Any:
        return find(self, scope, content_type) if state.direct else None

    async def counted(self: DirectRoutes, route: Any, *args: Any) -> None:
        state.answered.append(f"{route.method} {route.path}")
        await answer(self, route, *args)

    monkeypatch.setattr(DirectRoutes, "find", switched)
    monkeypatch.setattr(DirectRoutes, "answer", counted)
    return state


async def both(
    routing: Routing, client: httpx.AsyncClient, url: str, method: str = "POST", **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The same request answered by the direct route, then by the FastAPI route."""
    before = len(routing.answered)
    direct = await client.request(method, url, **kwargs)
    assert len(routing.answered) == before + 1, "not answered directly"
    routing.direct = False
    try:
        routed = await client.request(method, url, **kwargs)
    finally:
        routing.direct = True
    assert len(routing.answered) == before + 1
    return direct, routed


def same(direct: httpx.Response, routed: httpx.Response) -> None:
    assert direct.status_code == routed.status_code, (direct.text, routed.text)
    assert direct.headers["content-type"] == routed.headers["content-type"]
    assert direct.json() == routed.json()
    assert ("location" in direct.headers) == ("location" in routed.headers)
    assert ("etag" in direct.headers) == ("etag" in routed.headers)


def _without_lead(response: httpx.Response, lead_id: str) -> Any:
    return json.loads(response.text.replace(lead_id, "<lead>"))


async def test_claims_and_qualifications_are_answered_directly(
    api: QualifyApi, routing: Routing
) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    claim = await alice.post(f"/v1/leads/{lead}/claim")
    qualification = await alice.post(f"/v1/leads/{lead}/qualification", json=QUALIFICATION)
    assert (claim.status_code, qualification.status_code) == (200, 201)
    assert routing.answered == [CLAIM, QUALIFY]
    [(kind, _)] = await outbox(api, lead)
    assert kind == "lead.qualified.v1"
    # Other routes of the same paths, and another media type, go to FastAPI.
    other = await api.add_lead()
    await alice.post(f"/v1/leads/{other}/claim/renewal")
    await alice.delete(f"/v1/leads/{other}/claim")
    await alice.post(
        f"/v1/leads/{other}/qualification", content=b"<x/>", headers={"content-type": "text/xml"}
    )
    await alice.get(f"/v1/leads/{lead}")
    assert routing.answered == [CLAIM, QUALIFY]
    metrics = (await api.base.get("/metrics")).text
    assert 'route="/v1/leads/{lead_id}/claim"' in metrics  # the template, never the id
    assert lead not in metrics


async def test_successes_answer_as_the_fastapi_routes(api: QualifyApi, routing: Routing) -> None:
    first, second = await api.add_lead(), await api.add_lead()
    alice = await api.client("alice")
    answers: list[Any] = []
    for lead, direct in ((first, True), (second, False)):
        routing.direct = direct
        claim = await alice.post(f"/v1/leads/{lead}/claim")
        again = await alice.post(f"/v1/leads/{lead}/claim")  # the holder claims again
        qualified = await alice.post(f"/v1/leads/{lead}/qualification", json=QUALIFICATION)
        replay = await alice.post(f"/v1/leads/{lead}/qualification", json=QUALIFICATION)
        answers.append(
            [
                (r.status_code, r.headers["content-type"], _without_lead(r, lead))
                for r in (claim, again, qualified, replay)
            ]
        )
    routing.direct = True
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[0]] == [200, 200, 201, 409]
    assert routing.answered == [CLAIM, CLAIM, QUALIFY, QUALIFY]


@pytest.mark.parametrize(
    "lead_id",
    ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "%20", "x" * 300, "caf%C3%A9"],
)
async def test_unknown_and_malformed_lead_ids_answer_as_the_fastapi_routes(
    api: QualifyApi, routing: Routing, lead_id: str
) -> None:
    alice = await api.client("alice")
    for path, body in (("claim", None), ("qualification", QUALIFICATION)):
        direct, routed = await both(routing, alice, f"/v1/leads/{lead_id}/{path}", json=body)
        same(direct, routed)
        assert direct.status_code == 404


async def test_conflicts_and_callers_answer_as_the_fastapi_routes(
    api: QualifyApi, routing: Routing
) -> None:
    lead = await api.add_lead()
    await claimed(api, "alice", lead)
    bob = await api.client("bob")
    claim, qualification = f"/v1/leads/{lead}/claim", f"/v1/leads/{lead}/qualification"
    cases: list[tuple[httpx.AsyncClient, str, dict[str, Any]]] = [
        (bob, claim, {}),  # another operator holds it: 409
        (bob, qualification, {"json": QUALIFICATION}),  # no claim: 409
        (api.client_as(None), claim, {}),  # anonymous: 401
        (api.client_as("vo_unknown"), qualification, {"json": QUALIFICATION}),  # 401
        (await api.client("nora", roles=("seller",)), claim, {}),  # no role: 403
        (await api.client("nina", roles=("seller",)), qualification, {"json": {}}),  # 403
        # A malformed body is a 422 before the caller is checked, as FastAPI does.
        (api.client_as(None), qualification, {"content": b"{", "headers": _JSON}),
    ]
    statuses = []
    for client, url, kwargs in cases:
        direct, routed = await both(routing, client, url, **kwargs)
        same(direct, routed)
        statuses.append(direct.status_code)
    assert statuses == [409, 409, 401, 401, 403, 403, 422]


_JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": b"", "headers": _JSON},  # no body
        {"content": b"{", "headers": _JSON},  # malformed
        {"content": b'{"intent": "\xff"}', "headers": _JSON},  # not UTF-8
        {"content": b"[" * 5000 + b"]" * 5000, "headers": _JSON},  # too deep to decode
        {"content": b"null", "headers": _JSON},
        {"content": b"[]", "headers": _JSON},
        {"content": b'"trade_in"', "headers": _JSON},
        {"json": {}},
        {"json": {**QUALIFICATION, "unknown": 1}},
        {"json": {**QUALIFICATION, "intent": "nope", "channel": 3}},
        {"json": {**QUALIFICATION, "budget": {"min_eur": 20000, "max_eur": 1000}}},
        {"json": {**QUALIFICATION, "budget": {"min_eur": "10000"}}},  # strict: no str
        {"json": {**QUALIFICATION, "site": None}},  # in store without a site
        {"json": {**QUALIFICATION, "trade_in": None}},
        {"json": {**QUALIFICATION, "consents": {"fax": QUALIFICATION["consents"]["sms"]}}},
        {"json": {**QUALIFICATION, "language": "French", "notes": "\u00e9" * 5000}},
        {"json": {**QUALIFICATION, "preferred_contact_slots": "sat"}},
        {"content": b'{"intent": NaN}', "headers": _JSON},
        {"content": b'{"intent": 1e999}', "headers": _JSON},
    ],
)
async def test_invalid_qualifications_answer_as_the_fastapi_route(
    api: QualifyApi, routing: Routing, kwargs: dict[str, Any]
) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    url = f"/v1/leads/{lead}/qualification"
    direct, routed = await both(routing, alice, url, **kwargs)
    same(direct, routed)
    assert direct.status_code == 422
    assert direct.headers["content-type"] == "application/problem+json"
    assert (await alice.get(f"/v1/leads/{lead}")).json()["status"] == "waiting"
