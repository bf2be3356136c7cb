"""Call-backs the prospect asked for: the lead leaves the queue until their time and comes back
first; times the law or the call centre do not allow are refused with a reason and the next
allowed instant; the operator who set one keeps the lead until its time."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.qualify.conftest import QualifyApi, paris_now
from tests.qualify.test_api import assert_problem, claimed, queue_ids
from tests.support.clock import TUESDAY_11H

EVENING = "2026-11-24T17:30:00"  # Tuesday, local time of the prospect (Paris)


async def test_a_callback_leaves_the_queue_and_comes_back_first_at_its_time(
    api: QualifyApi,
) -> None:
    late = await api.add_lead(received_at=TUESDAY_11H - timedelta(minutes=20))  # due 10:55
    fresh = await api.add_lead(received_at=TUESDAY_11H, phone="+33698765432")  # due 11:15
    lead = await api.add_lead(received_at=TUESDAY_11H - timedelta(minutes=30), phone="+33611111111")
    alice = await claimed(api, "alice", lead)

    response = await alice.put(f"/v1/leads/{lead}/callback", json={"at": EVENING, "note": "ok"})
    assert response.status_code == 200, response.text
    callback = response.json()
    assert callback["at"] == "2026-11-24T16:30:00Z"
    assert callback["local_at"] == "2026-11-24T17:30:00+01:00"
    assert callback["timezone"] == "Europe/Paris"
    assert callback["operator_id"] == api.ids["alice"]

    # Out of the queue until then, its claim released; shown on the lead and in alice's list.
    assert await queue_ids(alice) == [late, fresh]
    out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert out["claim"] is None
    assert out["callback"]["at"] == "2026-11-24T16:30:00Z"
    assert out["due_at"] == "2026-11-24T16:30:00Z"
    assert out["available_at"] == "2026-11-24T16:30:00Z"
    assert out["overdue"] is False
    mine = (await alice.get("/v1/operators/me/callbacks")).json()
    assert [(line["callback"]["lead_id"], line["overdue"]) for line in mine] == [(lead, False)]
    bob = await api.client("bob")
    assert (await bob.get("/v1/operators/me/callbacks")).json() == []
    boss = await api.client("boss", roles=("manager",))
    listed = (await boss.get(f"/v1/operators/{api.ids['alice']}/callbacks")).json()
    assert [line["callback"]["lead_id"] for line in listed] == [lead]
    assert_problem(await bob.get(f"/v1/operators/{api.ids['alice']}/callbacks"), 403)
    stats = (await alice.get("/v1/operators/me/stats")).json()
    assert (stats["callbacks_scheduled"], stats["callbacks_due"]) == (1, 0)
    # Nobody takes it from the queue before its time.
    assert (await bob.post("/v1/queue/claim")).json()["lead_id"] == late
    await bob.delete(f"/v1/leads/{late}/claim")

    # At its time it comes back first, ahead of leads that were due long before.
    api.clock.now = paris_now(2026, 11, 24, 17, 30)
    page = (await bob.get("/v1/queue")).json()["items"]
    assert [item["lead_id"] for item in page] == [lead, late, fresh]
    assert [item["overdue"] for item in page] == [False, True, True]
    assert page[0]["callback_at"] == "2026-11-24T16:30:00Z"
    assert (await alice.get("/v1/operators/me/stats")).json()["callbacks_due"] == 1
    api.clock.advance(minutes=1)
    assert (await alice.get(f"/v1/leads/{lead}")).json()["overdue"] is True
    # From its time anyone may take it: claim-next serves it first.
    assert (await bob.post("/v1/queue/claim")).json()["lead_id"] == lead


async def test_callback_times_the_rules_do_not_allow_are_refused(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    url = f"/v1/leads/{lead}/callback"

    async def refused(at: str) -> tuple[str, str | None]:
        body = assert_problem(await alice.put(url, json={"at": at}), 409, "contact-not-allowed")
        assert "+336" not in json.dumps(body)
        return body["reason"], body.get("next_allowed_at")

    # Legal window (D223-9): 10:00-13:00 and 14:00-20:00 on weekdays, prospect's time zone.
    assert await refused("2026-11-24T20:30:00") == ("outside_calling_hours", "2026-11-25T09:00:00Z")
    assert await refused("2026-11-24T13:15:00+01:00") == (
        "outside_calling_hours",
        "2026-11-24T13:00:00Z",
    )
    assert await refused("2026-11-28T11:00:00") == ("weekend", "2026-11-30T09:00:00Z")
    # Legal, but the call centre closes at 19:00: nobody would call.
    assert await refused("2026-11-24T19:30:00") == ("call_centre_closed", "2026-11-25T09:00:00Z")

    past = assert_problem(await alice.put(url, json={"at": "2026-11-24T10:30:00"}), 422)
    assert [(e["field"], e["type"]) for e in past["errors"]] == [("at", "in_the_past")]
    far = assert_problem(await alice.put(url, json={"at": "2027-01-05T11:00:00"}), 422)
    assert [(e["field"], e["type"]) for e in far["errors"]] == [("at", "too_far_ahead")]
    bad = assert_problem(await alice.put(url, json={"at": "tomorrow"}), 422)
    assert bad["errors"][0]["field"] == "at"
    # Nothing was scheduled; the claim is still alice's.
    out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert out["callback"] is None
    assert out["claim"]["operator_id"] == api.ids["alice"]

    api.clock.now = paris_now(2026, 12, 21, 11, 0)
    await claimed(api, "alice", lead)
    assert await refused("2026-12-25T11:00:00") == ("public_holiday", "2026-12-28T09:00:00Z")
    assert (await alice.put(url, json={"at": "2026-12-22T10:00:00"})).status_code == 200


async def test_an_overseas_prospect_is_called_back_in_their_own_time(api: QualifyApi) -> None:
    lead = await api.add_lead(phone="+262692123456")  # La Réunion, UTC+4
    alice = await claimed(api, "alice", lead)
    url = f"/v1/leads/{lead}/callback"
    # 17:30 in Réunion is 14:30 in Paris: the call centre is open, the prospect may be called.
    response = await alice.put(url, json={"at": "2026-11-25T17:30:00"})
    assert response.status_code == 200, response.text
    assert response.json()["at"] == "2026-11-25T13:30:00Z"
    assert response.json()["timezone"] == "Indian/Reunion"
    assert response.json()["local_at"] == "2026-11-25T17:30:00+04:00"
    # 17:30 in Paris is 20:30 in Réunion: outside their calling hours.
    body = assert_problem(
        await alice.put(url, json={"at": "2026-11-25T17:30:00+01:00"}), 409, "contact-not-allowed"
    )
    assert body["reason"] == "outside_calling_hours"


async def test_callback_needs_the_claim_and_a_phone_number(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    url = f"/v1/leads/{lead}/callback"
    assert_problem(await alice.put(url, json={"at": EVENING}), 409, "claim-required")
    await claimed(api, "bob", lead)
    assert_problem(await alice.put(url, json={"at": EVENING}), 409, "lead-claimed")
    no_phone = await api.add_lead(phone=None)
    await claimed(api, "alice", no_phone)
    assert_problem(
        await alice.put(f"/v1/leads/{no_phone}/callback", json={"at": EVENING}),
        409,
        "missing-contact-detail",
    )
    assert_problem(await alice.put("/v1/leads/unknown/callback", json={"at": EVENING}), 404)


async def test_the_callback_is_its_operators_until_its_time(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    bob = await api.client("bob")
    url = f"/v1/leads/{lead}/callback"
    assert (await alice.put(url, json={"at": EVENING})).status_code == 200

    # Before its time nobody else may claim it, change or cancel it.
    body = assert_problem(await bob.post(f"/v1/leads/{lead}/claim"), 409, "callback-scheduled")
    assert body["callback_at"] == "2026-11-24T16:30:00+00:00"
    assert_problem(await bob.put(url, json={"at": "2026-11-24T18:00:00"}), 409, "claim-required")
    assert_problem(await bob.delete(url), 409, "claim-required")
    # Its operator may replace it without claiming again.
    replaced = await alice.put(url, json={"at": "2026-11-24T18:00:00"})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["at"] == "2026-11-24T17:00:00Z"
    # …and may claim it early.
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    assert (await alice.delete(f"/v1/leads/{lead}/claim")).status_code == 204

    # From its time, anyone.
    api.clock.now = paris_now(2026, 11, 24, 18, 0)
    assert (await bob.post(f"/v1/leads/{lead}/claim")).status_code == 200
    assert (await bob.delete(f"/v1/leads/{lead}/claim")).status_code == 204


async def test_cancelling_a_callback_puts_the_lead_back_in_the_queue(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    url = f"/v1/leads/{lead}/callback"
    assert (await alice.put(url, json={"at": EVENING})).status_code == 200
    api.clock.advance(minutes=30)
    assert lead not in await queue_ids(alice)
    assert (await alice.delete(url)).status_code == 204
    out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert out["callback"] is None
    assert out["available_at"] is None
    assert out["due_at"] == "2026-11-24T10:45:00Z"  # 15 business minutes after 11:30
    assert lead in await queue_ids(alice)
    assert_problem(await alice.delete(url), 404, "callback-not-found")

    # A manager may cancel anyone's.
    await claimed(api, "alice", lead)
    assert (await alice.put(url, json={"at": EVENING})).status_code == 200
    boss = await api.client("boss", roles=("manager",))
    assert (await boss.delete(url)).status_code == 204
    assert (await alice.get("/v1/operators/me/callbacks")).json() == []


async def test_a_call_fulfils_the_callback_a_message_does_not(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    url = f"/v1/leads/{lead}/callback"
    assert (await alice.put(url, json={"at": EVENING})).status_code == 200
    await claimed(api, "alice", lead)
    sms = await alice.post(
        f"/v1/leads/{lead}/attempts", json={"channel": "sms", "outcome": "no_answer"}
    )
    assert sms.status_code == 201, sms.text
    out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert out["callback"]["at"] == "2026-11-24T16:30:00Z"
    assert out["due_at"] == "2026-11-24T16:30:00Z"

    api.clock.now = paris_now(2026, 11, 24, 17, 30)
    await claimed(api, "alice", lead)
    call = await alice.post(
        f"/v1/leads/{lead}/attempts", json={"channel": "phone", "outcome": "reached"}
    )
    assert call.status_code == 201, call.text
    out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert out["callback"] is None
    # Reached but not qualified: followed up one call-centre day later (540 business minutes).
    assert out["due_at"] == "2026-11-25T16:30:00Z"
    assert (await alice.get("/v1/operators/me/callbacks")).json() == []
