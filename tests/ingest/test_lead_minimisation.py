"""Data minimisation on ingest's lead read (issue 14): an operator gets the lead without its
contact details, message and source answers (they read the contact of the leads they work on in
qualify's queue); managers, the data-protection officer and admins get it whole; sources and
sellers may not read leads at all. On SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.models import infra
from shared.auth import store_token
from shared.db.session import session_scope
from tests.ingest.conftest import IngestFactory
from tests.support.harness import RunningService

LEAD: dict[str, Any] = {
    "source": "leboncoin",
    "source_ref": "lbc-min-1",
    "contact": {"full_name": "Camille Durand", "phone": "06 12 34 56 78", "email": "c@d.fr"},
    "vehicle": {"ad_ref": "AD-9", "make": "Renault"},
    "message": "Toujours disponible ?",
}


async def token_for(service: RunningService, *roles: str) -> str:
    token = f"vo_{'-'.join(roles)}-reader"
    async with session_scope(service.app.state.runtime.session_factory) as session:
        await store_token(session, infra.api_token, token=token, name="test", roles=roles)
    return token


async def check_minimisation(service: RunningService) -> None:
    accepted = await service.client.post("/v1/leads", json=LEAD)
    assert accepted.status_code == 202, accepted.text
    path = f"/v1/leads/{accepted.json()['id']}"

    for roles in (("manager",), ("dpo",), ("admin",), ("operator", "manager")):
        async with service.client_as(await token_for(service, *roles)) as client:
            whole = (await client.get(path)).json()
        assert whole["contact"]["phone"] == "+33612345678", roles
        assert whole["message"] == "Toujours disponible ?"
        assert whole["withheld"] == []

    async with service.client_as(await token_for(service, "operator")) as operator:
        response = await operator.get(path)
    assert response.status_code == 200
    lead = response.json()
    assert (lead["contact"], lead["message"], lead["relay_email"], lead["extra"]) == (None,) * 4
    assert lead["withheld"] == ["contact", "message", "relay_email", "extra"]
    assert lead["vehicle"]["ad_ref"] == "AD-9"  # the rest of the lead is there
    for value in ("Camille", "Durand", "612345678", "c@d.fr", "disponible"):
        assert value not in response.text

    for roles in (("source",), ("seller",)):
        async with service.client_as(await token_for(service, *roles)) as client:
            assert (await client.get(path)).status_code == 403, roles


async def test_operators_read_a_lead_without_its_contact(ingest_service: IngestFactory) -> None:
    async with ingest_service() as service:
        await check_minimisation(service)


@pytest.mark.postgres
async def test_operators_read_a_lead_without_its_contact_on_postgres(
    ingest_service: IngestFactory, postgres_url: str
) -> None:
    async with ingest_service(database_url=postgres_url) as service:
        await check_minimisation(service)
