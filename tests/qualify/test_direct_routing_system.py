"""Direct routing end to end: a lead from a ``direct`` source goes from ingest to a seller's
webhook without any operator action (qualify's machine qualification, dispatch's offer, a real
signed webhook on 127.0.0.1), on the embedded default and on PostgreSQL + Kafka; crm's timeline
and SLA see its path. And a reopening reaches crm's timeline and SLA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from shared.clock import utcnow
from shared.events.payloads import DIRECT_ROUTING_OPERATOR
from shared.settings import ServiceSettings
from tests.dispatch.conftest import Received, Receiver
from tests.support.harness import System, eventually, run_system
from tests.support.http_server import serve

ALWAYS = "mon-sun 00:00-24:00"
LEAD: dict[str, Any] = {
    "source": "leboncoin",
    "source_ref": "lbc-direct-0001",
    "contact": {"first_name": "Camille", "last_name": "Durand", "phone": "06 12 34 56 78"},
    "message": "La Clio est-elle disponible ?",
    "vehicle": {"ad_ref": "AD-777", "make": "Renault", "model": "Clio"},
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = Starlette(routes=[Route("/hooks/{name}", state.handle, methods=["POST"])])
    async with serve(app) as base_url:
        state.base_url = base_url
        yield state


async def check_direct_routing(system: System, receiver: Receiver) -> None:
    dispatch = system.client("dispatch")
    seller = await dispatch.post(
        "/v1/sellers",
        json={
            "display_name": "Full-web seller",
            "mode": "full_web",
            "shifts": ALWAYS,  # on shift whatever the hour the test runs at
            "webhook_url": receiver.url("web"),
        },
    )
    assert seller.status_code == 201, seller.text
    receiver.secrets["web"] = seller.json()["webhook_secret"]
    rule = await system.qualify.put(
        "/v1/routing/sources/leboncoin", json={"path": "direct", "channel": "full_web"}
    )
    assert rule.status_code == 200, rule.text

    accepted = await system.ingest.post("/v1/leads", json=LEAD)
    assert accepted.status_code == 202, accepted.text
    lead_id = accepted.json()["id"]

    async def offered() -> Received | None:
        return next(
            (
                item
                for item in receiver.of("web")
                if item.event_type == "assignment.offered"
                and item.payload["data"]["lead"]["lead_id"] == lead_id
            ),
            None,
        )

    offer = await eventually(offered)
    assert receiver.rejected == 0  # the signature verified
    assert offer.payload["data"]["lead"]["contact"]["phone"] == "+33612345678"

    # Nobody in the call centre saw it; qualify recorded the machine qualification.
    queue = (await system.qualify.get("/v1/queue")).json()["items"]
    assert lead_id not in [item["lead_id"] for item in queue]
    lead = (await system.qualify.get(f"/v1/leads/{lead_id}")).json()
    assert (lead["status"], lead["path"]) == ("qualified", "direct")
    assert lead["qualification"]["operator_id"] == DIRECT_ROUTING_OPERATOR
    assert lead["attempts"] == []

    # crm: the timeline says which path; the SLA counts it on the direct path.
    qualified = await eventually(lambda: timeline_entry(system, "lead.qualified"))
    assert qualified["details"]["path"] == "direct"
    groups = await eventually(lambda: sla_groups(system, "direct"))
    assert next(s for s in groups["stages"] if s["stage"] == "qualified")["count"] == 1
    assert next(s for s in groups["stages"] if s["stage"] == "first_attempt")["overdue"] == 0


async def timeline_entry(system: System, kind: str) -> dict[str, Any] | None:
    response = await system.crm.get("/v1/clients", params={"phone": "0612345678"})
    assert response.status_code == 200, response.text
    for client in response.json()["items"]:
        for entry in client["timeline"]:
            if entry["kind"] == kind:
                found: dict[str, Any] = entry
                return found
    return None


async def sla_groups(system: System, path: str) -> dict[str, Any] | None:
    now = utcnow()
    window = {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(),
    }
    response = await system.crm.get("/v1/sla/summary", params={**window, "group_by": "path"})
    assert response.status_code == 200, response.text
    groups = {group["key"]: group for group in response.json()["groups"]}
    found: dict[str, Any] | None = groups.get(path)
    return found


async def test_direct_routing_on_the_embedded_backend(
    embedded_settings: dict[str, ServiceSettings], receiver: Receiver
) -> None:
    async with run_system(embedded_settings) as system:
        await check_direct_routing(system, receiver)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_direct_routing_on_postgres_and_kafka(
    production_settings: dict[str, ServiceSettings], receiver: Receiver
) -> None:
    async with run_system(production_settings) as system:
        await check_direct_routing(system, receiver)


async def test_a_reopening_reaches_crm(embedded_settings: dict[str, ServiceSettings]) -> None:
    settings = {name: embedded_settings[name] for name in ("ingest", "qualify", "crm")}
    async with run_system(settings) as system:
        lead_id = (await system.ingest.post("/v1/leads", json=LEAD)).json()["id"]
        await eventually(lambda: queued(system, lead_id))
        assert (await system.qualify.post(f"/v1/leads/{lead_id}/claim")).status_code == 200
        closed = await system.qualify.post(
            f"/v1/leads/{lead_id}/disqualification", json={"reason": "not_interested"}
        )
        assert closed.status_code == 201, closed.text
        await eventually(lambda: timeline_entry(system, "lead.disqualified"))
        reopened = await system.qualify.post(
            f"/v1/leads/{lead_id}/reopening", json={"reason": "disqualified_by_mistake"}
        )
        assert reopened.status_code == 201, reopened.text
        entry = await eventually(lambda: timeline_entry(system, "lead.reopened"))
        assert entry["details"]["reason"] == "disqualified_by_mistake"
        assert entry["details"]["previous_reason"] == "not_interested"
        assert "operator_id" in entry["details"]
        # crm's SLA consumer runs on its own: wait for it to take the disqualification back.
        row = await eventually(lambda: funnel_row(system, "qualify", disqualified=0))
        assert row["counts"]["received"] == 1


async def funnel_row(system: System, path: str, *, disqualified: int) -> dict[str, Any] | None:
    now = utcnow()
    params = {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(),
        "group_by": "path",
    }
    response = await system.crm.get("/v1/sla/funnel", params=params)
    assert response.status_code == 200, response.text
    for row in response.json()["rows"]:
        if row["keys"]["path"] == path and row["counts"]["disqualified"] == disqualified:
            found: dict[str, Any] = row
            return found
    return None


async def queued(system: System, lead_id: str) -> bool:
    items = (await system.qualify.get("/v1/queue")).json()["items"]
    return lead_id in [item["lead_id"] for item in items]
