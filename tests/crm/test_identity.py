"""Identity resolution: one client per person across sources, matched on the E.164 phone or the
case-folded e-mail; relay addresses and foreign numbers never merge people by mistake."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadReceivedV1, VehicleV1
from shared.settings import ServiceSettings
from tests.crm.conftest import CrmFactory, receive
from tests.support.harness import System, eventually, publish_events, run_system

RELAY = "mq7x1c@messagerie.lacentrale.fr"


def received(contact: dict[str, Any]) -> Envelope:
    lead_id = str(uuid.uuid4())
    payload = LeadReceivedV1(
        lead_id=lead_id,
        kind="enquiry",
        source="lacentrale",
        source_ref=lead_id,
        received_at=datetime.now(UTC),
        contact=ContactV1(**contact),
        vehicle=VehicleV1(),
    )
    return Envelope(
        source="/test",
        type="lead.received.v1",
        subject=lead_id,
        data=payload.model_dump(mode="json"),
    )


CASES = [
    pytest.param(
        {"full_name": "Yann Le Goff", "phone": "+33612121212", "email": "yann@ex.fr"},
        {"full_name": "Yann Le Goff", "phone": "+33612121212", "email": "y.legoff@ex.fr"},
        1,
        "phone",
        id="same phone, different e-mail",
    ),
    pytest.param(
        {"full_name": "Anne Roy", "email": "anne.roy@ex.fr"},
        {"full_name": "Anne Roy", "phone": "+33633333333", "email": "anne.roy@ex.fr"},
        1,
        "email",
        id="same e-mail, first without phone",
    ),
    pytest.param(
        {"full_name": "Paul A", "email": RELAY},
        {"full_name": "Marc B", "email": RELAY},
        2,
        "new",
        id="relay address never matches",
    ),
    pytest.param(
        {"full_name": "Jan Peeters", "phone": "+32470123456"},
        {"full_name": "Jean Pierre", "phone": "+33470123456"},
        2,
        "new",
        id="Belgian and French numbers with the same digits",
    ),
    pytest.param(
        {"full_name": "Lina K", "phone": "+33644444444", "email": "lina@ex.fr"},
        {"full_name": "Lina K", "phone": "+33655555555", "email": "lina@ex.fr"},
        1,
        "email",
        id="new phone, known e-mail",
    ),
]


async def _all_clients(system: System) -> list[dict[str, Any]]:
    return list((await system.crm.get("/v1/clients", params={"limit": 200})).json()["items"])


@pytest.mark.parametrize(("first", "second", "clients", "matched_on"), CASES)
async def test_identity_resolution(
    embedded_settings: dict[str, ServiceSettings],
    first: dict[str, Any],
    second: dict[str, Any],
    clients: int,
    matched_on: str,
) -> None:
    async with run_system({"crm": embedded_settings["crm"]}) as system:
        await publish_events(embedded_settings["crm"], [received(first), received(second)])

        async def both_applied() -> list[dict[str, Any]] | None:
            found = await _all_clients(system)
            entries = sum(len(client["timeline"]) for client in found)
            return found if entries == 2 else None

        found = await eventually(both_applied)
        assert len(found) == clients
        last_entry = max(
            (entry for client in found for entry in client["timeline"]),
            key=lambda entry: entry["occurred_at"],
        )
        assert last_entry["details"]["matched_on"] == matched_on
        assert all(client["email"] != RELAY for client in found)  # never an identity key


async def test_search_by_part_of_the_name(embedded_settings: dict[str, ServiceSettings]) -> None:
    async with run_system({"crm": embedded_settings["crm"]}) as system:
        await publish_events(
            embedded_settings["crm"],
            [
                received({"full_name": "Élodie Marchand", "phone": "+33677777777"}),
                received({"full_name": "Bruno Morel", "phone": "+33688888888"}),
            ],
        )

        async def two() -> bool:
            return len(await _all_clients(system)) == 2

        await eventually(two)
        found = (await system.crm.get("/v1/clients", params={"q": "march"})).json()["items"]
        assert [client["full_name"] for client in found] == ["Élodie Marchand"]
        short = await system.crm.get("/v1/clients", params={"q": "m"})
        assert short.status_code == 422


async def test_a_manager_splits_a_wrong_merge(
    embedded_settings: dict[str, ServiceSettings],
) -> None:
    # A shared family phone merged two people; the manager moves the second one's lead out.
    first = received({"full_name": "Hélène Vidal", "phone": "+33611223344", "email": "h@ex.fr"})
    second = received({"full_name": "Louis Vidal", "phone": "+33611223344", "email": "l@ex.fr"})
    async with run_system({"crm": embedded_settings["crm"]}) as system:
        await publish_events(embedded_settings["crm"], [first, second])

        async def merged() -> dict[str, Any] | None:
            found = await _all_clients(system)
            return found[0] if len(found) == 1 and len(found[0]["timeline"]) == 2 else None

        client = await eventually(merged)
        url = f"/v1/clients/{client['id']}/split"
        assert (await system.crm.post(url, json={"lead_ids": ["nope"]})).status_code == 422
        everything = {"lead_ids": [first.subject, second.subject]}
        assert (await system.crm.post(url, json=everything)).status_code == 422
        assert (
            await system.crm.post("/v1/clients/x/split", json={"lead_ids": ["a"]})
        ).status_code == 404

        response = await system.crm.post(url, json={"lead_ids": [second.subject]})
        assert response.status_code == 200, response.text
        body = response.json()
        kept, created = body["client"], body["new_client"]
        assert (kept["full_name"], kept["email"]) == ("Hélène Vidal", "h@ex.fr")
        assert (created["full_name"], created["email"]) == ("Louis Vidal", "l@ex.fr")
        assert {e["lead_id"] for e in created["timeline"] if e["kind"] == "lead.received"} == {
            second.subject
        }
        assert [e["kind"] for e in kept["timeline"]].count("client.split") == 1
        assert len(await _all_clients(system)) == 2


async def test_the_phone_wins_over_an_older_client_with_the_same_email(crm: CrmFactory) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        by_email = await receive(service, ContactV1(full_name="Marc B", email="famille@ex.fr"))
        by_phone = await receive(service, ContactV1(full_name="Léa B", phone="+33612340000"))
        both = ContactV1(full_name="Léa B", phone="+33612340000", email="famille@ex.fr")
        assert await receive(service, both) == by_phone
        other_phone = ContactV1(full_name="Marc B", phone="+33699990000", email="famille@ex.fr")
        assert await receive(service, other_phone) == by_email
        assert await receive(service, ContactV1(full_name="Nouveau", email="n@ex.fr")) not in {
            by_email,
            by_phone,
        }
