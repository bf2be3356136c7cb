"""The thin slice end to end: POST a lead on ingest, see it in qualify's queue and crm's clients."""

from __future__ import annotations

from typing import Any

import pytest

from shared.settings import ServiceSettings
from tests.support.harness import System, eventually, run_system

LEAD: dict[str, Any] = {
    "source": "leboncoin",
    "source_ref": "lbc-2026-0001",
    "contact": {
        "first_name": "Camille",
        "last_name": "Durand",
        "phone": "06 12 34 56 78",
        "email": "Camille.Durand@Example.FR",
    },
    "message": "Bonjour, la Clio est-elle toujours disponible ?",
    "vehicle": {"ad_ref": "AD-123", "make": "Renault", "model": "Clio", "price_eur": 12990},
}


async def _queue_ids(system: System) -> list[str]:
    response = await system.qualify.get("/v1/queue")
    assert response.status_code == 200, response.text
    return [item["lead_id"] for item in response.json()["items"]]


async def _clients(system: System, phone: str) -> list[dict[str, Any]]:
    response = await system.crm.get("/v1/clients", params={"phone": phone})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def check_thin_slice(system: System) -> None:
    accepted = await system.ingest.post("/v1/leads", json=LEAD)
    assert accepted.status_code == 202, accepted.text
    lead_id = accepted.json()["id"]
    assert accepted.json()["status"] == "accepted"

    lead = (await system.ingest.get(f"/v1/leads/{lead_id}")).json()
    assert lead["contact"]["phone"] == "+33612345678"
    assert lead["contact"]["email"] == "camille.durand@example.fr"

    queued = await eventually(lambda: _has(system, lead_id))
    assert queued
    clients = await eventually(lambda: _clients(system, "+33 6 12 34 56 78"))
    assert len(clients) == 1
    client = clients[0]
    assert client["phone"] == "+33612345678"
    assert [entry["lead_id"] for entry in client["timeline"]] == [lead_id]
    assert client["timeline"][0]["kind"] == "lead.received"
    assert client["timeline"][0]["details"]["ad_ref"] == "AD-123"

    # Replay: same lead id, nothing new anywhere.
    replay = await system.ingest.post("/v1/leads", json=LEAD)
    assert replay.status_code == 202
    assert replay.json() == {"id": lead_id, "status": "duplicate"}
    second = await system.ingest.post("/v1/leads", json={**LEAD, "source_ref": "lbc-2026-0002"})
    second_id = second.json()["id"]
    await eventually(lambda: _has(system, second_id))
    assert (await _queue_ids(system)).count(lead_id) == 1

    # crm consumes the same event on its own: wait for it rather than for qualify.
    async def timeline_with_both() -> list[str] | None:
        client = (await _clients(system, "0612345678"))[0]
        lead_ids = [entry["lead_id"] for entry in client["timeline"]]
        return lead_ids if second_id in lead_ids else None

    assert await eventually(timeline_with_both) == [lead_id, second_id]


async def _has(system: System, lead_id: str) -> bool:
    return lead_id in await _queue_ids(system)


async def test_thin_slice_on_embedded_backend(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    async with run_system(embedded_settings) as system:
        await check_thin_slice(system)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_thin_slice_on_postgres_and_kafka(
    production_settings: dict[str, ServiceSettings],
) -> None:
    async with run_system(production_settings) as system:
        await check_thin_slice(system)


async def test_requests_without_token_are_refused(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    async with run_system(embedded_settings, workers=False) as system:
        async with system.client_as("ingest", None) as bare:
            response = await bare.post("/v1/leads", json=LEAD)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
