"""The erasure proof: a client created through every source and step, exported, then erased; every
table of the four databases (and the embedded bus log) is scanned for their name, phone and
e-mail: zero hits. Also: erasure completes when a service was down during the request."""

from __future__ import annotations

from typing import Any

import pytest

from shared.settings import ServiceSettings
from tests.support.harness import System, eventually, migrate, run_app, run_system, run_worker
from tests.support.pii_scan import bus_hits, database_hits

NAME, FIRST, LAST = "Mathilde Garnier", "Mathilde", "Garnier"
PHONE, EMAIL = "06 44 55 66 77", "Mathilde.Garnier@exemple.fr"
NEEDLES = [FIRST, LAST, "644556677", "mathilde.garnier@"]

QUALIFICATION: dict[str, Any] = {
    "intent": "buy",
    "channel": "full_web",
    "site": None,
    "budget": {"min_eur": 9000, "max_eur": 13000},
    "financing_wanted": False,
    "language": "fr",
    "notes": "Mathilde Garnier rappelle samedi.",
}


def leads() -> list[dict[str, Any]]:
    return [
        {
            "source": "leboncoin",
            "source_ref": "lbc-proof-1",
            "contact": {"first_name": FIRST, "last_name": LAST, "phone": PHONE, "email": EMAIL},
            "message": f"Bonjour, {NAME} ici, la Clio est-elle disponible ?",
            "vehicle": {"ad_ref": "AD-PROOF-1"},
        },
        {
            "source": "lacentrale",
            "source_ref": "lc-proof-2",
            "contact": {"full_name": NAME, "phone": "+33 6 44 55 66 77"},
            "message": "Toujours intéressée.",
            "vehicle": {"ad_ref": "AD-PROOF-2"},
        },
    ]


async def _client(system: System) -> dict[str, Any] | None:
    items = (await system.crm.get("/v1/clients", params={"phone": PHONE})).json()["items"]
    return items[0] if items else None


async def build_history(system: System) -> tuple[str, list[str]]:
    lead_ids = []
    for lead in leads():
        response = await system.ingest.post("/v1/leads", json=lead)
        assert response.status_code == 202, response.text
        lead_ids.append(response.json()["id"])

    async def queued() -> bool:
        items = (await system.qualify.get("/v1/queue")).json()["items"]
        return {item["lead_id"] for item in items} >= set(lead_ids)

    await eventually(queued, timeout_s=60)
    first = lead_ids[0]
    assert (await system.qualify.post(f"/v1/leads/{first}/claim")).status_code == 200
    attempt = await system.qualify.post(
        f"/v1/leads/{first}/attempts",
        json={"channel": "sms", "outcome": "reached", "note": f"{NAME} préfère les SMS"},
    )
    assert attempt.status_code == 201, attempt.text
    qualified = await system.qualify.post(f"/v1/leads/{first}/qualification", json=QUALIFICATION)
    assert qualified.status_code == 201, qualified.text

    async def whole_timeline() -> dict[str, Any] | None:
        client = await _client(system)
        timeline = client["timeline"] if client else []
        kinds = {entry["kind"] for entry in timeline}
        leads = {entry["lead_id"] for entry in timeline}
        complete = {"lead.received", "lead.qualified"} <= kinds and leads >= set(lead_ids)
        return client if complete else None

    client = await eventually(whole_timeline, timeout_s=60)
    assert {entry["lead_id"] for entry in client["timeline"]} == set(lead_ids)
    return str(client["id"]), lead_ids


async def export_everything(system: System, client_id: str) -> dict[str, Any]:
    assert (await system.crm.post(f"/v1/clients/{client_id}/export")).status_code == 202

    async def done() -> dict[str, Any] | None:
        response = await system.crm.get(f"/v1/clients/{client_id}/export")
        return response.json() if response.status_code == 200 else None

    document = await eventually(done, timeout_s=60)
    assert set(document["services"]) == {"ingest", "qualify", "dispatch", "crm"}
    assert document["portability"]["sections"]
    return document


async def erase(system: System, client_id: str) -> dict[str, Any]:
    created = await system.crm.post("/v1/privacy/erasure-requests", json={"client_id": client_id})
    assert created.status_code == 202, created.text
    request_id = created.json()["id"]

    async def completed() -> dict[str, Any] | None:
        body = (await system.crm.get(f"/v1/privacy/erasure-requests/{request_id}")).json()
        return body if body["status"] == "completed" else None

    return await eventually(completed, timeout_s=90)


async def assert_nothing_left(settings: dict[str, ServiceSettings]) -> None:
    for name, service_settings in settings.items():
        hits = await database_hits(service_settings.resolved_database_url(), NEEDLES)
        assert hits == {}, f"{name} still holds the client's data in {hits}"
    first = next(iter(settings.values()))
    if first.bus == "embedded":
        assert bus_hits(first.embedded_bus_path, NEEDLES) == 0


async def check_proof(settings: dict[str, ServiceSettings]) -> None:
    async with run_system(settings) as system:
        client_id, _ = await build_history(system)
        document = await export_everything(system, client_id)
        exported = repr(document)
        assert "Garnier" in exported  # the export holds the data...
        assert "+33644556677" in exported
        request = await erase(system, client_id)
        assert all(request["services"][name] for name in settings)
        assert request["services"]["ingest"]["erased"]["lead"] == 2
        assert (await system.crm.get(f"/v1/clients/{client_id}")).status_code == 404
    await assert_nothing_left(settings)  # ...and after erasure nothing anywhere does


async def test_erasure_proof_on_embedded_backend(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    await check_proof(embedded_settings)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_erasure_proof_on_postgres_and_kafka(
    production_settings: dict[str, ServiceSettings],
) -> None:
    await check_proof(production_settings)


async def test_erasure_completes_when_a_service_was_down(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    running = {name: s for name, s in embedded_settings.items() if name != "dispatch"}
    dispatch = embedded_settings["dispatch"]
    async with run_system(running) as system:
        lead = leads()[0]
        assert (await system.ingest.post("/v1/leads", json=lead)).status_code == 202
        client = await eventually(lambda: _client(system))
        created = await system.crm.post(
            "/v1/privacy/erasure-requests", json={"client_id": client["id"]}
        )
        request_id = created.json()["id"]

        async def three_answered() -> bool:
            body = (await system.crm.get(f"/v1/privacy/erasure-requests/{request_id}")).json()
            return sum(1 for answer in body["services"].values() if answer) == 3

        await eventually(three_answered)
        body = (await system.crm.get(f"/v1/privacy/erasure-requests/{request_id}")).json()
        assert body["status"] == "in_progress"
        assert body["services"]["dispatch"] is None

        # dispatch comes back: it catches up on the privacy topic and answers.
        await migrate(dispatch)
        async with run_app(dispatch), run_worker(dispatch):

            async def completed() -> bool:
                body = (await system.crm.get(f"/v1/privacy/erasure-requests/{request_id}")).json()
                return bool(body["status"] == "completed")

            await eventually(completed, timeout_s=60)
