"""crm reads a phone with the one shared rule (issue 11, item 3): a client stored as
``+262692456789`` (a Réunion mobile) is found by ``0692456789``, ``0692 45 67 89`` or its E.164
form, and the do-not-contact list answers the same for every spelling; a number no region
accepts is a 422 naming ``phone``, never echoed."""

from __future__ import annotations

import pytest

from shared.events.payloads import ContactV1
from tests.crm.conftest import CrmFactory, receive

E164 = "+262692456789"
SPELLINGS = ["0692456789", "0692 45 67 89", "06.92.45.67.89", "+262 692 45 67 89", E164]


async def test_a_client_is_found_by_any_spelling_of_an_overseas_number(crm: CrmFactory) -> None:
    async with crm.running() as system:
        crm_service = system.services["crm"]
        client_id = await receive(crm_service, ContactV1(full_name="Jean Dupont", phone=E164))
        other = await receive(
            crm_service, ContactV1(full_name="Paul Martin", phone="+262692456780")
        )
        assert other != client_id
        for spelling in SPELLINGS:
            found = await system.crm.get("/v1/clients", params={"phone": spelling})
            assert found.status_code == 200, (spelling, found.text)
            assert [item["id"] for item in found.json()["items"]] == [client_id], spelling


@pytest.mark.parametrize("written", ["0692 45 67", "+33 692 45 67 8", "12"])
async def test_a_number_no_region_accepts_is_a_422(crm: CrmFactory, written: str) -> None:
    async with crm.running() as system:
        answer = await system.crm.get("/v1/clients", params={"phone": written})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert [error["field"] for error in answer.json()["errors"]] == ["phone"]
        assert written not in answer.text


async def test_an_objection_on_an_overseas_number_answers_every_spelling(
    crm: CrmFactory,
) -> None:
    async with crm.running() as system:
        created = await system.crm.post(
            "/v1/privacy/objections", json={"phone": "0692 45 67 89", "reason": "objection"}
        )
        assert created.status_code == 201, created.text
        for spelling in SPELLINGS:
            found = await system.crm.get("/v1/privacy/objections", params={"phone": spelling})
            assert found.status_code == 200, found.text
            assert found.json()["suppressed"] is True, spelling
        neighbour = await system.crm.get("/v1/privacy/objections", params={"phone": "0692456780"})
        assert neighbour.json()["suppressed"] is False
