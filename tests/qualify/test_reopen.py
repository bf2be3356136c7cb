"""Reopening a lead disqualified by mistake: its operator within a day, a manager any time; back
in the queue with a new due time and ``lead.reopened.v1``; never a qualified lead."""

from __future__ import annotations

from tests.qualify.conftest import QualifyApi
from tests.qualify.test_api import QUALIFICATION, assert_problem, claimed, outbox, queue_ids


async def disqualified(api: QualifyApi, name: str, reason: str = "not_interested") -> str:
    lead = await api.add_lead()
    client = await claimed(api, name, lead)
    response = await client.post(f"/v1/leads/{lead}/disqualification", json={"reason": reason})
    assert response.status_code == 201, response.text
    return lead


async def test_the_operator_reopens_their_disqualification_within_a_day(api: QualifyApi) -> None:
    lead = await disqualified(api, "alice")
    alice, bob = await api.client("alice"), await api.client("bob")
    url = f"/v1/leads/{lead}/reopening"
    body = {"reason": "disqualified_by_mistake"}
    assert_problem(await bob.post(url, json=body), 403, "forbidden")
    api.clock.advance(hours=23)  # Wednesday 10:00
    response = await alice.post(url, json=body)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "lead_id": lead,
        "status": "waiting",
        "reason": "disqualified_by_mistake",
        "previous_reason": "not_interested",
        "reopened_at": "2026-11-25T09:00:00Z",
        "due_at": "2026-11-25T09:15:00Z",  # first-contact delay from now
    }
    out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert (out["status"], out["closed_at"], out["disqualification"]) == ("waiting", None, None)
    assert out["reopening"]["operator_id"] == api.ids["alice"]
    assert out["overdue"] is False
    assert lead in await queue_ids(bob)
    kinds = [kind for kind, _ in await outbox(api, lead)]
    assert kinds == ["lead.disqualified.v1", "lead.reopened.v1"]
    [(_, event)] = [item for item in await outbox(api, lead) if item[0] == "lead.reopened.v1"]
    assert event == {
        "lead_id": lead,
        "reopened_at": "2026-11-25T09:00:00Z",
        "operator_id": api.ids["alice"],
        "reason": "disqualified_by_mistake",
        "previous_reason": "not_interested",
        "due_at": "2026-11-25T09:15:00Z",
    }
    assert_problem(await alice.post(url, json=body), 409, "lead-open")
    # It can be worked and closed again.
    await claimed(api, "alice", lead)
    again = await alice.post(f"/v1/leads/{lead}/disqualification", json={"reason": "spam"})
    assert again.status_code == 201, again.text


async def test_after_a_day_only_a_manager_reopens(api: QualifyApi) -> None:
    lead = await disqualified(api, "alice")
    alice = await api.client("alice")
    boss = await api.client("boss", roles=("manager",))
    api.clock.advance(hours=24, seconds=1)
    url = f"/v1/leads/{lead}/reopening"
    body = assert_problem(await alice.post(url, json={"reason": "other"}), 403, "forbidden")
    assert body["reopen_until"] == "2026-11-25T10:00:00Z"
    api.clock.advance(days=30)
    response = await boss.post(url, json={"reason": "prospect_came_back"})
    assert response.status_code == 201, response.text
    [(_, event)] = [item for item in await outbox(api, lead) if item[0] == "lead.reopened.v1"]
    assert event["operator_id"] == api.ids["boss"]


async def test_a_qualified_lead_is_never_reopened(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    await alice.post(f"/v1/leads/{lead}/qualification", json=QUALIFICATION)
    boss = await api.client("boss", roles=("manager",))
    url = f"/v1/leads/{lead}/reopening"
    assert_problem(await boss.post(url, json={"reason": "other"}), 409, "lead-qualified")
    assert_problem(await alice.post(url, json={"reason": "other"}), 409, "lead-qualified")
    open_lead = await api.add_lead()
    assert_problem(
        await boss.post(f"/v1/leads/{open_lead}/reopening", json={"reason": "other"}),
        409,
        "lead-open",
    )
    bad = assert_problem(await boss.post(url, json={"reason": "because"}), 422)
    assert [error["field"] for error in bad["errors"]] == ["reason"]
    assert_problem(await boss.post("/v1/leads/unknown/reopening", json={"reason": "other"}), 404)


async def test_an_unreachable_lead_reopened_gets_its_tries_again(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    for _ in range(3):  # the fixture's limit: unreachable after 3 unanswered attempts
        await alice.post(
            f"/v1/leads/{lead}/attempts", json={"channel": "sms", "outcome": "no_answer"}
        )
    assert (await alice.get(f"/v1/leads/{lead}")).json()["status"] == "disqualified"
    response = await alice.post(
        f"/v1/leads/{lead}/reopening", json={"reason": "prospect_came_back"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "contacting"  # it had attempts
    assert response.json()["previous_reason"] == "unreachable"
    api.clock.advance(minutes=1)
    await claimed(api, "alice", lead)
    one_more = await alice.post(
        f"/v1/leads/{lead}/attempts", json={"channel": "sms", "outcome": "no_answer"}
    )
    assert one_more.json()["lead_status"] == "contacting"
    out = (await alice.get(f"/v1/leads/{lead}")).json()
    assert out["unanswered_attempts"] == 1
    assert len(out["attempts"]) == 4
    assert out["due_at"] == "2026-11-24T10:31:00Z"  # the ladder starts again: +30 minutes
