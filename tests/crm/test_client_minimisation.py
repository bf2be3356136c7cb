"""Data minimisation of crm's client reads (issue 14): an operator finds a client by the exact
phone or e-mail they hold and reads the history without contact details; listing clients and
searching names are for managers and the data-protection officer, who read clients whole."""

from __future__ import annotations

from typing import Any

from shared.events.payloads import ContactV1
from tests.crm.conftest import CrmFactory, receive, store_role_token
from tests.support.harness import RunningService

PERSON = ContactV1(
    first_name="Inès", last_name="Morel", full_name="Inès Morel", phone="+33612345678"
)
CONTACT_FIELDS = ("first_name", "last_name", "full_name", "phone", "email")


async def _get(service: RunningService, role: str, path: str, **params: Any) -> Any:
    async with service.client_as(await store_role_token(service, role)) as caller:
        return await caller.get(path, params=params)


async def test_an_operator_reads_a_client_found_by_phone_without_contact(
    crm: CrmFactory,
) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        client_id = await receive(service, PERSON)

        found = await _get(service, "operator", "/v1/clients", phone="06 12 34 56 78")
        assert found.status_code == 200, found.text
        [client] = found.json()["items"]
        assert client["id"] == client_id
        assert client["withheld"] == ["contact"]
        assert all(client[field] is None for field in CONTACT_FIELDS)
        [receipt] = client["timeline"]
        assert receipt["kind"] == "lead.received"
        assert "contact" not in receipt["details"]  # the lead's own copy is withheld too
        assert "Morel" not in found.text
        assert "612345678" not in found.text

        one = await _get(service, "operator", f"/v1/clients/{client_id}")
        assert one.status_code == 200
        assert one.json()["withheld"] == ["contact"]
        assert "Morel" not in one.text
        assert "612345678" not in one.text


async def test_an_operator_cannot_list_clients_or_search_names(crm: CrmFactory) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        await receive(service, PERSON)
        for params in ({}, {"q": "Morel"}, {"q": "Morel", "phone": "0612345678"}):
            refused = await _get(service, "operator", "/v1/clients", **params)
            assert refused.status_code == 403, params
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["type"].endswith("/lookup-by-contact-only")
            assert "Morel" not in refused.text


async def test_managers_and_the_dpo_read_clients_whole(crm: CrmFactory) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        client_id = await receive(service, PERSON)
        for role in ("manager", "dpo"):
            listed = await _get(service, role, "/v1/clients")
            assert listed.status_code == 200, (role, listed.text)
            [client] = listed.json()["items"]
            assert (client["full_name"], client["phone"]) == ("Inès Morel", "+33612345678")
            assert client["withheld"] == []
            named = await _get(service, role, "/v1/clients", q="Morel")
            assert [item["id"] for item in named.json()["items"]] == [client_id]
            one = await _get(service, role, f"/v1/clients/{client_id}")
            assert one.json()["timeline"][0]["details"]["contact"]["phone"] == "+33612345678"
        for role in ("seller", "source"):
            assert (await _get(service, role, "/v1/clients")).status_code == 403
