"""Claims on PostgreSQL under contention: 20 operators at once, each lead claimed exactly once;
a pending call-back keeps its lead for its operator; call-backs lead the queue across cursor
pages; concurrent reopenings reopen once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import outbox
from tests.support.clock import TUESDAY_11H, Clock

OPERATORS = 20


@pytest.fixture
async def pg_api(postgres_url: str, tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    async with open_api(qualify_settings(postgres_url, tmp_path), clock) as api:
        yield api


async def _operators(api: QualifyApi) -> list[httpx.AsyncClient]:
    return [await api.client(f"operator-{index:02d}") for index in range(OPERATORS)]


@pytest.mark.postgres
async def test_twenty_operators_claim_the_same_lead(pg_api: QualifyApi) -> None:
    lead = await pg_api.add_lead()
    operators = await _operators(pg_api)
    responses = await asyncio.gather(
        *(client.post(f"/v1/leads/{lead}/claim") for client in operators)
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: OPERATORS - 1}
    assert {response.json()["type"] for response in responses if response.status_code == 409} == {
        "/problems/lead-claimed"
    }
    index = next(i for i, response in enumerate(responses) if response.status_code == 200)
    assert responses[index].json()["lead_id"] == lead
    assert responses[index].json()["operator_id"] == pg_api.ids[f"operator-{index:02d}"]
    assert (await operators[index].get(f"/v1/leads/{lead}")).status_code == 200
    loser = operators[(index + 1) % OPERATORS]
    assert (await loser.get(f"/v1/leads/{lead}")).status_code == 403


@pytest.mark.postgres
async def test_twenty_operators_drain_the_queue_each_lead_once(pg_api: QualifyApi) -> None:
    leads = [
        await pg_api.add_lead(received_at=TUESDAY_11H - timedelta(minutes=index))
        for index in range(60)
    ]
    operators = await _operators(pg_api)

    async def drain(client: httpx.AsyncClient) -> list[str]:
        taken: list[str] = []
        while True:
            response = await client.post("/v1/queue/claim")
            if response.status_code == 404:
                assert response.json()["type"] == "/problems/queue-empty"
                return taken
            assert response.status_code == 200, response.text
            taken.append(response.json()["lead_id"])

    results = await asyncio.gather(*(drain(client) for client in operators))
    claimed = [lead for taken in results for lead in taken]
    assert sorted(claimed) == sorted(leads)  # every lead once, none twice
    assert sum(1 for taken in results if taken) > 1  # the work was shared

    # And by id, all at once on the same few leads: one winner per lead.
    fresh = [await pg_api.add_lead() for _ in range(3)]
    responses = await asyncio.gather(
        *(client.post(f"/v1/leads/{lead}/claim") for client in operators for lead in fresh)
    )
    winners = Counter(
        response.json()["lead_id"] for response in responses if response.status_code == 200
    )
    assert winners == dict.fromkeys(fresh, 1)
    assert all(response.status_code in (200, 409) for response in responses)


@pytest.mark.postgres
async def test_a_pending_callback_keeps_its_lead_for_its_operator(pg_api: QualifyApi) -> None:
    lead = await pg_api.add_lead()
    operators = await _operators(pg_api)
    owner = operators[0]
    assert (await owner.post(f"/v1/leads/{lead}/claim")).status_code == 200
    response = await owner.put(f"/v1/leads/{lead}/callback", json={"at": "2026-11-24T17:30:00"})
    assert response.status_code == 200, response.text

    responses = await asyncio.gather(
        *(client.post(f"/v1/leads/{lead}/claim") for client in operators[1:])
    )
    assert {response.json()["type"] for response in responses} == {"/problems/callback-scheduled"}
    # Its operator may take it before its time, even while the others keep trying.
    responses = await asyncio.gather(
        *(client.post(f"/v1/leads/{lead}/claim") for client in operators)
    )
    assert responses[0].status_code == 200
    assert {response.status_code for response in responses[1:]} == {409}
    assert (await owner.delete(f"/v1/leads/{lead}/claim")).status_code == 204

    pg_api.clock.now = TUESDAY_11H.replace(hour=17, minute=30)  # its time: anyone, once
    responses = await asyncio.gather(*(client.post("/v1/queue/claim") for client in operators))
    winners = [response for response in responses if response.status_code == 200]
    assert [response.json()["lead_id"] for response in winners] == [lead]
    assert {response.status_code for response in responses} == {200, 404}


@pytest.mark.postgres
async def test_callbacks_come_first_across_cursor_pages(pg_api: QualifyApi) -> None:
    ordinary = [
        await pg_api.add_lead(received_at=TUESDAY_11H - timedelta(minutes=index))
        for index in range(5)
    ]
    alice = (await _operators(pg_api))[0]
    callbacks = []
    for minute in (45, 40):
        lead = await pg_api.add_lead(phone=f"+336000000{minute}")
        assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
        at = f"2026-11-24T11:{minute}:00"
        assert (await alice.put(f"/v1/leads/{lead}/callback", json={"at": at})).status_code == 200
        callbacks.append(lead)
    pg_api.clock.now = TUESDAY_11H.replace(minute=50)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await alice.get("/v1/queue", params=params)).json()
        seen += [item["lead_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Call-backs first (11:40 before 11:45), then ordinary leads by due time.
    assert seen == [callbacks[1], callbacks[0], *reversed(ordinary)]


@pytest.mark.postgres
async def test_managers_reopening_at_once_reopen_once(pg_api: QualifyApi) -> None:
    lead = await pg_api.add_lead()
    alice = (await _operators(pg_api))[0]
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    closed = await alice.post(f"/v1/leads/{lead}/disqualification", json={"reason": "spam"})
    assert closed.status_code == 201
    managers = [await pg_api.client(f"boss-{index}", roles=("manager",)) for index in range(10)]
    responses = await asyncio.gather(
        *(
            client.post(f"/v1/leads/{lead}/reopening", json={"reason": "other"})
            for client in managers
        )
    )
    assert Counter(response.status_code for response in responses) == {201: 1, 409: 9}
    assert {r.json()["type"] for r in responses if r.status_code == 409} == {"/problems/lead-open"}
    kinds = [kind for kind, _ in await outbox(pg_api, lead)]
    assert kinds.count("lead.reopened.v1") == 1
