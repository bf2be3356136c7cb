"""crm's part of erasure: the request is recorded, published, answered by crm itself, idempotent,
refused to non-managers, and due one month later on the app's clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.events.payloads import ContactV1
from shared.settings import ServiceSettings
from tests.crm.conftest import CrmFactory, receive, store_role_token
from tests.support.clock import Clock
from tests.support.harness import System, eventually, run_system

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


async def test_only_managers_request_erasure(crm: CrmFactory) -> None:
    async with crm.running() as system:
        token = await store_role_token(system.services["crm"], "operator")
        async with system.client_as("crm", token) as client:
            refused = await client.post("/v1/privacy/erasure-requests", json={"client_id": "x"})
        assert refused.status_code == 403


async def test_the_legal_due_date_is_flagged_then_overdue_as_time_passes(crm: CrmFactory) -> None:
    clock = Clock()
    async with crm.running(clock=clock) as system:
        client_id = await receive(
            system.services["crm"], ContactV1(full_name="Léa Martin", phone="+33611223344")
        )
        created = await system.crm.post(
            "/v1/privacy/erasure-requests", json={"client_id": client_id}
        )
        assert created.status_code == 202, created.text
        request = created.json()
        assert datetime.fromisoformat(request["requested_at"]) == clock.now
        assert datetime.fromisoformat(request["due_at"]) == clock.now + timedelta(days=30)
        assert (request["flagged"], request["overdue"]) == (False, False)
        url = f"/v1/privacy/erasure-requests/{request['id']}"

        clock.advance(days=24)  # within the last week before the due date
        progress = (await system.crm.get(url)).json()
        assert (progress["flagged"], progress["overdue"]) == (True, False)

        clock.advance(days=7)
        progress = (await system.crm.get(url)).json()
        assert (progress["flagged"], progress["overdue"]) == (True, True)
        listed = (await system.crm.get("/v1/privacy/erasure-requests")).json()["items"]
        assert [(item["id"], item["overdue"]) for item in listed] == [(request["id"], True)]
