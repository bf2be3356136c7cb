"""Qualify's HTTP API on the embedded backend: queue, claims, attempts, qualification, reads,
stats, the state machine and the problems."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from qualify.models import QueuedLead, infra
from shared.db.session import session_scope
from tests.qualify.conftest import QualifyApi, paris_now
from tests.support.clock import PARIS, TUESDAY_11H

PROBLEM = "application/problem+json"

QUALIFICATION: dict[str, Any] = {
    "intent": "trade_in",
    "channel": "in_store",
    "site": "LYON-01",
    "budget": {"min_eur": 10000, "max_eur": 15000},
    "trade_in": {"make": "Peugeot", "model": "208", "year": 2017, "mileage_km": 85000},
    "financing_wanted": True,
    "preferred_contact_slots": [{"day": "sat", "start": "10:00", "end": "12:00"}],
    "language": "fr",
    "consents": {
        "sms": {
            "granted": True,
            "at": "2026-11-24T10:05:00+01:00",
            "wording": "J'accepte de recevoir des offres par SMS.",
            "collected_via": "phone_call",
        }
    },
    "notes": "Wants to visit on Saturday.",
}


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if slug is not None:
        assert body["type"] == f"/problems/{slug}"
    return body


async def outbox(api: QualifyApi, lead_id: str) -> list[tuple[str, dict[str, Any]]]:
    table = infra.outbox_event
    async with session_scope(api.runtime.session_factory) as session:
        rows = (
            await session.execute(
                select(table.c.event_type, table.c.value)
                .where(table.c.subject == lead_id)
                .order_by(table.c.id)
            )
        ).all()
    return [(row.event_type, json.loads(row.value)) for row in rows]


async def queue_ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/v1/queue", params=params)
    assert response.status_code == 200, response.text
    return [item["lead_id"] for item in response.json()["items"]]


async def claimed(api: QualifyApi, name: str, lead_id: str) -> httpx.AsyncClient:
    client = await api.client(name)
    response = await client.post(f"/v1/leads/{lead_id}/claim")
    assert response.status_code == 200, response.text
    return client


# -- queue ---------------------------------------------------------------------------------


async def test_queue_is_ordered_by_business_time_deadline(api: QualifyApi) -> None:
    alice = await api.client("alice")
    # Received 10:50 by e-mail (15 min → 11:05), 10:58 on Facebook (5 min → 11:03), and Friday
    # 18:55 on Leboncoin (15 min → Saturday 09:10: closed at 19:00 and the night).
    late = await api.add_lead(source="email", received_at=TUESDAY_11H - timedelta(minutes=10))
    fast = await api.add_lead(source="facebook", received_at=TUESDAY_11H - timedelta(minutes=2))
    friday = await api.add_lead(received_at=paris_now(2026, 11, 20, 18, 55))
    page = (await alice.get("/v1/queue")).json()
    assert [item["lead_id"] for item in page["items"]] == [friday, fast, late]
    due = {item["lead_id"]: item["due_at"] for item in page["items"]}
    assert due[fast] == "2026-11-24T10:03:00Z"
    assert due[late] == "2026-11-24T10:05:00Z"
    assert due[friday] == "2026-11-21T08:10:00Z"
    assert [item["overdue"] for item in page["items"]] == [True, False, False]


async def test_queue_filters_and_cursor(api: QualifyApi) -> None:
    alice = await api.client("alice")
    ids = [
        await api.add_lead(source="leboncoin", received_at=TUESDAY_11H - timedelta(minutes=m))
        for m in (50, 40, 30, 10, 5)
    ]
    other = await api.add_lead(source="lacentrale", received_at=TUESDAY_11H)
    async with session_scope(api.runtime.session_factory) as session:
        await session.execute(
            update(QueuedLead).where(QueuedLead.lead_id == ids[0]).values(site="LYON-01")
        )
        await session.execute(
            update(QueuedLead).where(QueuedLead.lead_id == ids[1]).values(status="contacting")
        )
    assert await queue_ids(alice, source="lacentrale") == [other]
    assert await queue_ids(alice, site="LYON-01") == [ids[0]]
    assert await queue_ids(alice, status="contacting") == [ids[1]]
    assert await queue_ids(alice, overdue="true") == ids[:3]  # due 10:25, 10:35, 10:45
    assert await queue_ids(alice, overdue="false") == [*ids[3:], other]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await alice.get("/v1/queue", params=params)).json()
        seen += [item["lead_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [*ids, other]
    assert_problem(await alice.get("/v1/queue", params={"cursor": "garbage!"}), 422)
    bad = assert_problem(await alice.get("/v1/queue", params={"status": "qualified"}), 422)
    assert [error["field"] for error in bad["errors"]] == ["status"]


# -- claims --------------------------------------------------------------------------------


async def test_claim_lease_conflict_expiry_renewal_and_release(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice, bob = await api.client("alice"), await api.client("bob")

    claim = (await alice.post(f"/v1/leads/{lead}/claim")).json()
    assert claim["operator_id"] == api.ids["alice"]
    assert claim["expires_at"] == "2026-11-24T10:10:00Z"  # 10 minutes
    body = assert_problem(await bob.post(f"/v1/leads/{lead}/claim"), 409, "lead-claimed")
    assert "alice" not in json.dumps(body)
    assert lead not in await queue_ids(bob)

    api.clock.advance(minutes=9)
    renewed = (await alice.post(f"/v1/leads/{lead}/claim/renewal")).json()
    assert renewed["expires_at"] == "2026-11-24T10:19:00Z"
    assert_problem(await bob.post(f"/v1/leads/{lead}/claim/renewal"), 409, "lead-claimed")

    api.clock.advance(minutes=10, seconds=1)  # expired: back in the queue
    assert lead in await queue_ids(bob)
    assert_problem(await alice.post(f"/v1/leads/{lead}/claim/renewal"), 409, "claim-required")
    assert (await bob.post(f"/v1/leads/{lead}/claim")).status_code == 200
    attempt = {"channel": "phone", "outcome": "no_answer"}
    assert_problem(
        await alice.post(f"/v1/leads/{lead}/attempts", json=attempt), 409, "lead-claimed"
    )

    assert_problem(await alice.delete(f"/v1/leads/{lead}/claim"), 409, "lead-claimed")
    assert (await bob.delete(f"/v1/leads/{lead}/claim")).status_code == 204
    assert lead in await queue_ids(alice)
    assert_problem(await bob.delete(f"/v1/leads/{lead}/claim"), 409, "claim-required")


async def test_manager_may_release_anyones_claim(api: QualifyApi) -> None:
    lead = await api.add_lead()
    await claimed(api, "alice", lead)
    boss = await api.client("boss", roles=("manager",))
    assert (await boss.delete(f"/v1/leads/{lead}/claim")).status_code == 204
    assert lead in await queue_ids(boss)


async def test_claim_next_takes_the_earliest_deadline(api: QualifyApi) -> None:
    alice, bob = await api.client("alice"), await api.client("bob")
    first = await api.add_lead(received_at=TUESDAY_11H - timedelta(minutes=30))
    second = await api.add_lead(received_at=TUESDAY_11H - timedelta(minutes=20))
    assert (await alice.post("/v1/queue/claim")).json()["lead_id"] == first
    assert (await bob.post("/v1/queue/claim")).json()["lead_id"] == second
    assert_problem(await bob.post("/v1/queue/claim"), 404, "queue-empty")


# -- attempts and the contact rules ---------------------------------------------------------


async def test_calls_outside_the_window_are_refused_with_a_reason(api: QualifyApi) -> None:
    # A message (not an enquiry: no own-request exemption), Tuesday 20:30.
    api.clock.now = paris_now(2026, 11, 24, 20, 30)
    lead = await api.add_lead(kind="message", received_at=TUESDAY_11H)
    alice = await claimed(api, "alice", lead)
    body = assert_problem(
        await alice.post(
            f"/v1/leads/{lead}/attempts", json={"channel": "phone", "outcome": "reached"}
        ),
        409,
        "contact-not-allowed",
    )
    assert body["reason"] == "outside_calling_hours"
    assert body["next_allowed_at"] == "2026-11-25T09:00:00Z"
    assert "+336" not in json.dumps(body)
    # E-mail is not a call.
    ok = await alice.post(
        f"/v1/leads/{lead}/attempts", json={"channel": "email", "outcome": "no_answer"}
    )
    assert ok.status_code == 201, ok.text
    # The consumer asked for this evening slot: allowed, with the proof stored.
    request = {
        "slot_start": "2026-11-24T20:00:00+01:00",
        "slot_end": "2026-11-24T21:00:00+01:00",
        "requested_at": "2026-11-24T11:30:00+01:00",
        "channel": "phone_call",
        "wording": "Rappelez-moi ce soir après 20 h.",
    }
    slot = await alice.post(
        f"/v1/leads/{lead}/attempts",
        json={"channel": "phone", "outcome": "reached", "consumer_request": request},
    )
    assert slot.status_code == 201, slot.text
    assert slot.json()["attempt"]["exemption"] == "consumer_requested_slot"


async def test_an_overseas_consumer_is_called_in_their_own_time_zone(api: QualifyApi) -> None:
    api.clock.now = paris_now(2026, 11, 24, 8, 30)  # 11:30 in Réunion, 08:30 in Paris
    reunion = await api.add_lead(
        kind="message", phone="+262692123456", received_at=TUESDAY_11H - timedelta(days=3)
    )
    paris = await api.add_lead(kind="message", received_at=TUESDAY_11H - timedelta(days=3))
    alice = await claimed(api, "alice", reunion)
    await claimed(api, "alice", paris)
    call = {"channel": "phone", "outcome": "reached"}
    assert (await alice.post(f"/v1/leads/{reunion}/attempts", json=call)).status_code == 201
    body = assert_problem(await alice.post(f"/v1/leads/{paris}/attempts", json=call), 409)
    assert body["reason"] == "outside_calling_hours"


async def test_answering_an_enquiry_is_exempt_but_not_after_48h(api: QualifyApi) -> None:
    api.clock.now = paris_now(2026, 11, 28, 11, 0)  # Saturday
    fresh = await api.add_lead(received_at=api.clock.now - timedelta(hours=3))
    old = await api.add_lead(received_at=api.clock.now - timedelta(hours=50), phone="+33698765432")
    alice = await claimed(api, "alice", fresh)
    await claimed(api, "alice", old)
    call = {"channel": "phone", "outcome": "reached"}
    ok = await alice.post(f"/v1/leads/{fresh}/attempts", json=call)
    assert ok.status_code == 201, ok.text
    assert ok.json()["attempt"]["exemption"] == "answering_own_request"
    body = assert_problem(await alice.post(f"/v1/leads/{old}/attempts", json=call), 409)
    assert body["reason"] == "weekend"


async def test_four_calls_per_consumer_per_30_days_across_leads(api: QualifyApi) -> None:
    first = await api.add_lead(received_at=TUESDAY_11H - timedelta(days=3))
    second = await api.add_lead(received_at=TUESDAY_11H - timedelta(days=3))  # same phone
    alice = await claimed(api, "alice", first)
    bob = await claimed(api, "bob", second)
    call = {"channel": "phone", "outcome": "reached"}
    for hours_ago in (23, 21, 20):  # Monday 12:00, 14:00, 15:00
        response = await alice.post(
            f"/v1/leads/{first}/attempts",
            json={**call, "attempted_at": (TUESDAY_11H - timedelta(hours=hours_ago)).isoformat()},
        )
        assert response.status_code == 201, response.text
    assert (await bob.post(f"/v1/leads/{second}/attempts", json=call)).status_code == 201
    body = assert_problem(await bob.post(f"/v1/leads/{second}/attempts", json=call), 409)
    assert body["reason"] == "call_limit_reached"
    # An SMS is not a call.
    sms = await bob.post(
        f"/v1/leads/{second}/attempts", json={"channel": "sms", "outcome": "reached"}
    )
    assert sms.status_code == 201


async def test_a_refusal_blocks_further_calls(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    refused = await alice.post(
        f"/v1/leads/{lead}/attempts", json={"channel": "phone", "outcome": "refused"}
    )
    assert refused.status_code == 201
    api.clock.advance(days=1)
    await claimed(api, "alice", lead)
    body = assert_problem(
        await alice.post(
            f"/v1/leads/{lead}/attempts", json={"channel": "phone", "outcome": "reached"}
        ),
        409,
    )
    assert body["reason"] == "consumer_refused_calls"
    assert "next_allowed_at" in body


async def test_unanswered_attempts_disqualify_as_unreachable(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    outcomes = ["no_answer", "voicemail", "no_answer"]  # limit set to 3 in the fixture
    results = []
    for outcome in outcomes:
        response = await alice.post(
            f"/v1/leads/{lead}/attempts", json={"channel": "sms", "outcome": outcome}
        )
        assert response.status_code == 201, response.text
        results.append(response.json())
    assert [r["lead_status"] for r in results] == ["contacting", "contacting", "disqualified"]
    assert results[-1]["auto_disqualified"] is True
    events = await outbox(api, lead)
    assert [kind for kind, _ in events] == ["lead.contact-attempted.v1"] * 3 + [
        "lead.disqualified.v1"
    ]
    assert events[-1][1]["reason"] == "unreachable"
    assert events[-1][1]["automatic"] is True
    assert events[0][1]["operator_id"] == api.ids["alice"]
    assert_problem(
        await alice.post(
            f"/v1/leads/{lead}/attempts", json={"channel": "sms", "outcome": "reached"}
        ),
        409,
        "lead-closed",
    )


async def test_attempt_validation(api: QualifyApi) -> None:
    lead = await api.add_lead(email=None)
    alice = await claimed(api, "alice", lead)
    url = f"/v1/leads/{lead}/attempts"
    bad = assert_problem(await alice.post(url, json={"channel": "fax", "outcome": "maybe"}), 422)
    assert {error["field"] for error in bad["errors"]} == {"channel", "outcome"}
    future = (api.clock.now + timedelta(hours=1)).isoformat()
    bad = assert_problem(
        await alice.post(
            url, json={"channel": "sms", "outcome": "reached", "attempted_at": future}
        ),
        422,
    )
    assert bad["errors"][0]["field"] == "attempted_at"
    spoof = {"channel": "sms", "outcome": "reached", "operator_id": "someone-else"}
    assert (
        assert_problem(await alice.post(url, json=spoof), 422)["errors"][0]["field"]
        == "operator_id"
    )
    assert_problem(
        await alice.post(url, json={"channel": "email", "outcome": "reached"}),
        409,
        "missing-contact-detail",
    )


# -- qualification and the state machine ----------------------------------------------------


async def test_qualification_closes_the_lead_and_publishes_it_whole(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    url = f"/v1/leads/{lead}/qualification"
    assert_problem(await alice.post(url, json=QUALIFICATION), 409, "claim-required")
    await claimed(api, "alice", lead)
    response = await alice.post(url, json=QUALIFICATION)
    assert response.status_code == 201, response.text
    assert response.json()["qualification"]["vehicle_ad_ref"] == "AD-1"

    [(kind, data)] = await outbox(api, lead)
    assert kind == "lead.qualified.v1"
    assert data["operator_id"] == api.ids["alice"]
    assert data["trade_in"]["model"] == "208"
    assert data["consents"]["sms"]["wording"].startswith("J'accepte")
    assert data["contact"]["phone"] == "+33612345678"
    assert data["site"] == "LYON-01"
    assert lead not in await queue_ids(alice)

    # Every action on a closed lead is a 409.
    for method, path, body in [
        ("POST", "claim", None),
        ("POST", "qualification", QUALIFICATION),
        ("POST", "disqualification", {"reason": "spam"}),
        ("POST", "attempts", {"channel": "sms", "outcome": "reached"}),
        ("POST", "claim/renewal", None),
        ("DELETE", "claim", None),
    ]:
        response = await alice.request(method, f"/v1/leads/{lead}/{path}", json=body)
        assert_problem(response, 409, "lead-closed")


async def test_qualification_is_validated_field_by_field(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    body = {
        **QUALIFICATION,
        "intent": "financing",
        "financing_wanted": False,
        "site": None,
        "budget": {"min_eur": 20000, "max_eur": 1000},
        "language": "French",
        "preferred_contact_slots": [{"day": "mon", "start": "18:00", "end": "09:00"}],
        "consents": {"fax": QUALIFICATION["consents"]["sms"]},
    }
    problem = assert_problem(await alice.post(f"/v1/leads/{lead}/qualification", json=body), 422)
    fields = {error["field"] for error in problem["errors"]}
    assert {
        "site",
        "financing_wanted",
        "budget.max_eur",
        "language",
        "preferred_contact_slots.0.end",
        "consents.fax.[key]",
    } <= fields
    assert "20000" not in json.dumps(problem)
    trade_in = {**QUALIFICATION, "trade_in": None}
    problem = assert_problem(
        await alice.post(f"/v1/leads/{lead}/qualification", json=trade_in), 422
    )
    assert [error["field"] for error in problem["errors"]] == ["trade_in"]
    # The lead is still open and claimed: nothing was written.
    assert (await alice.get(f"/v1/leads/{lead}")).json()["status"] == "waiting"


async def test_disqualification(api: QualifyApi) -> None:
    original = await api.add_lead()
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    url = f"/v1/leads/{lead}/disqualification"
    problem = assert_problem(await alice.post(url, json={"reason": "duplicate"}), 422)
    assert [error["field"] for error in problem["errors"]] == ["duplicate_of"]
    problem = assert_problem(
        await alice.post(url, json={"reason": "duplicate", "duplicate_of": "nope"}), 422
    )
    assert problem["errors"][0]["field"] == "duplicate_of"
    assert_problem(await alice.post(url, json={"reason": "spam", "duplicate_of": original}), 422)
    response = await alice.post(url, json={"reason": "duplicate", "duplicate_of": original})
    assert response.status_code == 201, response.text
    [(kind, data)] = await outbox(api, lead)
    assert kind == "lead.disqualified.v1"
    assert data["duplicate_of"] == original
    assert data["automatic"] is False
    lead_out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert lead_out["status"] == "disqualified"
    assert lead_out["disqualification"]["duplicate_of"] == original
    assert_problem(await alice.post(f"/v1/leads/{lead}/claim"), 409, "lead-closed")


# -- reads, stats, auth ----------------------------------------------------------------------


async def test_read_lead_with_attempts_and_visibility(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    bob = await api.client("bob")
    boss = await api.client("boss", roles=("manager",))
    await alice.post(
        f"/v1/leads/{lead}/attempts", json={"channel": "phone", "outcome": "no_answer"}
    )
    out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert out["status"] == "contacting"
    assert out["claim"]["operator_id"] == api.ids["alice"]
    assert [a["outcome"] for a in out["attempts"]] == ["no_answer"]
    assert out["attempts"][0]["operator_id"] == api.ids["alice"]
    assert_problem(await bob.get(f"/v1/leads/{lead}"), 403, "forbidden")
    assert (await boss.get(f"/v1/leads/{lead}")).status_code == 200
    assert_problem(await alice.get("/v1/leads/unknown"), 404, "lead-not-found")
    await alice.post(f"/v1/leads/{lead}/qualification", json=QUALIFICATION)
    done = (await alice.get(f"/v1/leads/{lead}")).json()
    assert done["qualification"]["qualification"]["intent"] == "trade_in"
    assert done["claim"] is None
    assert_problem(await bob.get(f"/v1/leads/{lead}"), 403)


async def test_operator_stats(api: QualifyApi) -> None:
    alice = await api.client("alice")
    boss = await api.client("boss", roles=("manager",))
    first = await api.add_lead(received_at=TUESDAY_11H - timedelta(minutes=20))
    second = await api.add_lead(
        received_at=TUESDAY_11H - timedelta(minutes=6), phone="+33698765432"
    )
    for lead in (first, second):
        await claimed(api, "alice", lead)
        response = await alice.post(
            f"/v1/leads/{lead}/attempts", json={"channel": "phone", "outcome": "reached"}
        )
        assert response.status_code == 201
    await alice.post(f"/v1/leads/{first}/qualification", json=QUALIFICATION)
    await alice.post(f"/v1/leads/{second}/disqualification", json={"reason": "not_interested"})
    stats = (await alice.get("/v1/operators/me/stats")).json()
    assert stats["operator_id"] == api.ids["alice"]
    assert stats["day"] == "2026-11-24"
    assert (stats["handled_today"], stats["qualified_today"], stats["disqualified_today"]) == (
        2,
        1,
        1,
    )
    assert stats["attempts_today"] == 2
    assert stats["avg_minutes_to_first_attempt"] == 13.0
    assert stats["avg_business_minutes_to_first_attempt"] == 13.0
    bob = await api.client("bob")
    assert (await bob.get("/v1/operators/me/stats")).json()["handled_today"] == 0
    assert_problem(await bob.get(f"/v1/operators/{api.ids['alice']}/stats"), 403, "forbidden")
    managed = (await boss.get(f"/v1/operators/{api.ids['alice']}/stats")).json()
    assert managed["handled_today"] == 2


async def test_auth_problems(api: QualifyApi) -> None:
    lead = await api.add_lead()
    async with api.client_as(None) as bare:
        for method, path in [
            ("GET", "/v1/queue"),
            ("POST", f"/v1/leads/{lead}/claim"),
            ("GET", f"/v1/leads/{lead}"),
            ("GET", "/v1/operators/me/stats"),
        ]:
            assert_problem(await bare.request(method, path), 401, "unauthorized")
    seller = await api.client("sam", roles=("seller",))
    assert_problem(await seller.get("/v1/queue"), 403, "forbidden")
    assert_problem(await seller.post(f"/v1/leads/{lead}/claim"), 403, "forbidden")
    operator = await api.client("alice")
    assert_problem(await operator.post("/v1/leads/unknown/claim"), 404, "lead-not-found")
    assert_problem(
        await operator.post(
            f"/v1/leads/{lead}/attempts",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        422,
    )


async def test_clock_fixture_is_paris_time(api: QualifyApi) -> None:
    assert api.clock.now.tzinfo == PARIS
