"""Claims on PostgreSQL under contention: 20 operators at once, each lead claimed exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
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
