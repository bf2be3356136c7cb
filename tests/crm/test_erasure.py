"""crm's part of erasure: the request is recorded, published, answered by crm itself, idempotent,
and refused to non-managers."""

from __future__ import annotations

from typing import Any

from shared.auth import store_token
from shared.db import create_engine, make_session_factory, session_scope
from shared.settings import ServiceSettings
from tests.support.harness import SERVICES, System, eventually, run_system

LEAD: dict[str, Any] = {
    "source": "facebook",
    "source_ref": "fb-erase-1",
    "contact": {"full_name": "Hugo Petit", "phone": "06 01 02 03 04", "email": "hugo@example.fr"},
}


async def _client_id(system: System) -> str | None:
    items = (await system.crm.get("/v1/clients", params={"phone": "0601020304"})).json()["items"]
    return str(items[0]["id"]) if items else None


async def test_erasure_request_is_answered_by_crm_and_idempotent(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    settings = {name: embedded_settings[name] for name in ("ingest", "crm")}
    async with run_system(settings) as system:
        await system.ingest.post("/v1/leads", json=LEAD)
        client_id = await eventually(lambda: _client_id(system))

        created = await system.crm.post(
            "/v1/privacy/erasure-requests", json={"client_id": client_id}
        )
        assert created.status_code == 202, created.text
        request = created.json()
        assert request["status"] == "in_progress"
        assert request["lead_count"] == 1
        assert set(request["services"]) == {"ingest", "qualify", "dispatch", "crm"}
        assert request["due_at"] > request["requested_at"]

        async def crm_answered() -> dict[str, Any] | None:
            body = (await system.crm.get(f"/v1/privacy/erasure-requests/{request['id']}")).json()
            return body if body["services"]["crm"] else None

        progress = await eventually(crm_answered)
        assert progress["services"]["crm"]["erased"] == {
            "client": 1,
            "timeline_entry": 1,
            "export_request": 0,
        }
        assert progress["status"] == "in_progress"  # the other services have not answered here
        assert (await system.crm.get(f"/v1/clients/{client_id}")).status_code == 404

        again = await system.crm.post("/v1/privacy/erasure-requests", json={"client_id": client_id})
        assert again.status_code == 200
        assert again.json()["id"] == request["id"]

        unknown = await system.crm.post("/v1/privacy/erasure-requests", json={"client_id": "nope"})
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"

        open_requests = (await system.crm.get("/v1/privacy/erasure-requests")).json()["items"]
        assert [item["id"] for item in open_requests] == [request["id"]]


async def test_only_managers_request_erasure(embedded_settings: dict[str, ServiceSettings]) -> None:
    settings = embedded_settings["crm"]
    async with run_system({"crm": settings}, workers=False) as system:
        engine = create_engine(settings.resolved_database_url())
        async with session_scope(make_session_factory(engine)) as session:
            await store_token(
                session,
                SERVICES["crm"].infra.api_token,
                token="vo_op",
                name="op",
                roles=["operator"],
            )
        await engine.dispose()
        async with system.client_as("crm", None) as client:
            refused = await client.post(
                "/v1/privacy/erasure-requests",
                json={"client_id": "x"},
                headers={"Authorization": "Bearer vo_op"},
            )
        assert refused.status_code == 403
