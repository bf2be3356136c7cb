"""Rectification (GDPR Art. 16) end to end on the embedded default: a manager corrects a client's
phone and name in crm; ingest's, qualify's and dispatch's copies of the lead show the new phone,
the seller's tool that holds the lead receives a signed ``lead.updated`` with it, and crm's
timeline records who changed which fields, without the values."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from shared.settings import ServiceSettings
from tests.dispatch.conftest import Received, Receiver
from tests.support.harness import System, eventually, run_system
from tests.support.http_server import serve

ALWAYS = "mon-sun 00:00-24:00"
OLD_PHONE = "+33612345678"
NEW_PHONE = "+33698765432"
LEAD: dict[str, Any] = {
    "source": "leboncoin",
    "source_ref": "lbc-rectify-0001",
    "contact": {"first_name": "Camille", "last_name": "Durand", "phone": "06 12 34 56 78"},
    "vehicle": {"ad_ref": "AD-888", "make": "Renault", "model": "Clio"},
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = Starlette(routes=[Route("/hooks/{name}", state.handle, methods=["POST"])])
    async with serve(app) as base_url:
        state.base_url = base_url
        yield state


def _of_type(receiver: Receiver, event_type: str, lead_id: str) -> Received | None:
    for item in receiver.of("web"):
        data = item.payload["data"]
        if item.event_type == event_type and lead_id in (
            data.get("lead_id"),
            (data.get("lead") or {}).get("lead_id"),
        ):
            return item
    return None


async def _client(system: System, phone: str) -> dict[str, Any] | None:
    items = (await system.crm.get("/v1/clients", params={"phone": phone})).json()["items"]
    return items[0] if items else None


async def test_a_rectification_reaches_every_copy_on_the_embedded_backend(
    embedded_settings: dict[str, ServiceSettings], receiver: Receiver
) -> None:
    async with run_system(embedded_settings) as system:
        await check_rectification(system, receiver)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_a_rectification_reaches_every_copy_on_postgres_and_kafka(
    production_settings: dict[str, ServiceSettings], receiver: Receiver
) -> None:
    async with run_system(production_settings) as system:
        await check_rectification(system, receiver)


async def check_rectification(system: System, receiver: Receiver) -> None:
    dispatch = system.client("dispatch")
    seller = await dispatch.post(
        "/v1/sellers",
        json={
            "display_name": "Full-web seller",
            "mode": "full_web",
            "shifts": ALWAYS,
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
    offer = await eventually(lambda: _async(_of_type(receiver, "assignment.offered", lead_id)))
    assert offer.payload["data"]["lead"]["contact"]["phone"] == OLD_PHONE
    client = await eventually(lambda: _client(system, OLD_PHONE))

    answer = await system.crm.patch(
        f"/v1/clients/{client['id']}", json={"phone": "06 98 76 54 32", "last_name": "Duran"}
    )
    assert answer.status_code == 200, answer.text

    # The seller's tool is told, signed (the receiver verified the signature).
    update = await eventually(lambda: _async(_of_type(receiver, "lead.updated", lead_id)))
    assert receiver.rejected == 0
    data = update.payload["data"]
    assert data["contact"]["phone"] == NEW_PHONE
    assert data["contact"]["full_name"] == "Camille Duran"
    assert data["fields"] == ["full_name", "phone"]

    # Every service's copy shows the new phone.
    # (each service applies the rectification from its own consumer: in its own time)
    await eventually(lambda: _lead_with_phone(system.ingest, lead_id, NEW_PHONE))
    qualify_lead = await eventually(lambda: _lead_with_phone(system.qualify, lead_id, NEW_PHONE))
    assert qualify_lead["contact"]["full_name"] == "Camille Duran"
    seller_token = await dispatch.post(f"/v1/sellers/{seller.json()['id']}/token")
    async with system.client_as("dispatch", seller_token.json()["token"]) as tool:
        [own] = (await tool.get("/v1/sellers/me/assignments")).json()
    assert own["lead"]["contact"]["phone"] == NEW_PHONE

    # crm: the record, and the timeline says who changed which fields, never the values.
    rectified = await eventually(lambda: _client(system, NEW_PHONE))
    [entry] = [e for e in rectified["timeline"] if e["kind"] == "client.rectified"]
    assert entry["details"]["fields"] == ["last_name", "full_name", "phone"]
    assert entry["details"]["by"]
    text = json.dumps(entry)
    for value in ("Duran", "9876", "98 76", NEW_PHONE, OLD_PHONE, "Camille"):
        assert value not in text


async def _async(value: Received | None) -> Received | None:
    return value


async def _lead_with_phone(
    service: httpx.AsyncClient, lead_id: str, phone: str
) -> dict[str, Any] | None:
    """The service's copy of the lead once it shows ``phone``."""
    lead: dict[str, Any] = (await service.get(f"/v1/leads/{lead_id}")).json()
    return lead if lead["contact"]["phone"] == phone else None
