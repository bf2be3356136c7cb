"""Rectification (Art. 16), ingest's share: crm's ``privacy.client-rectified.v1`` reaches ingest's
worker and corrects the stored leads' contact with its derived fields (matching key, relay flag,
the number as written); the raw input stays as received (audit, purged by retention); another
person's lead is untouched; a redelivery under another event id changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ingest.models import Lead, RawInput
from ingest.privacy.rectification import correct
from shared.db import session_scope
from shared.events.privacy import ClientRectifiedV1
from tests.ingest.conftest import IngestFactory, ingest_settings
from tests.ingest.corpus import FIXTURES
from tests.support.clock import TUESDAY_11H
from tests.support.harness import RunningService, eventually
from tests.support.rectification import publish_privacy, rectified

EMAIL = {"Content-Type": "message/rfc822"}
RELAY = "4f1c2d3e-5a6b-5c7d-8e9f-0a1b2c3d4e5f@messagerie.lacentrale.fr"
NEW_PHONE = "+33698765432"
OTHER: dict[str, Any] = {
    "source": "api",
    "source_ref": "other-person",
    "contact": {"full_name": "Marc Petit", "phone": "06 11 22 33 44", "email": "marc@ex.fr"},
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("postgres_url")}
    return {}


async def _lead(service: RunningService, lead_id: str) -> dict[str, Any]:
    answer = await service.client.get(f"/v1/leads/{lead_id}")
    assert answer.status_code == 200, answer.text
    lead: dict[str, Any] = answer.json()
    return lead


async def test_a_rectification_corrects_the_stored_leads_not_the_raw_input(
    ingest_service: IngestFactory, tmp_path: Path, database: dict[str, str]
) -> None:
    async with ingest_service(worker=True, **database) as service:
        raw = (FIXTURES / "email" / "lacentrale_text_relay.eml").read_bytes()
        received = await service.client.post("/v1/sources/email", content=raw, headers=EMAIL)
        assert received.status_code == 202, received.text
        lead_id = received.json()["id"]
        other_id = (await service.client.post("/v1/leads", json=OTHER)).json()["id"]
        before_other = await _lead(service, other_id)
        settings = ingest_settings(tmp_path, **database)

        await publish_privacy(
            settings,
            [
                rectified(
                    [lead_id, "not-ingests-lead"],
                    TUESDAY_11H,
                    fields=["phone", "full_name", "email"],
                    phone=NEW_PHONE,
                    full_name="Sophie Bernard-Lefèvre",
                    email="sophie.bernard@exemple.fr",
                )
            ],
        )

        async def corrected() -> dict[str, Any] | None:
            lead = await _lead(service, lead_id)
            return lead if lead["contact"]["phone"] == NEW_PHONE else None

        contact = (await eventually(corrected))["contact"]
        assert contact == {
            "first_name": None,
            "last_name": None,
            "full_name": "Sophie Bernard-Lefèvre",
            "email": "sophie.bernard@exemple.fr",
            "phone": NEW_PHONE,
            "email_key": "sophie.bernard@exemple.fr",
            "email_is_relay": False,
            "phone_raw": None,
        }
        lead = await _lead(service, lead_id)
        assert lead["relay_email"] == RELAY  # where answers reach the buyer: not the person
        assert await _lead(service, other_id) == before_other
        # The raw input is the audit record of the receipt: as received.
        async with session_scope(service.app.state.runtime.session_factory) as session:
            body = await session.scalar(
                select(RawInput.body).where(RawInput.id == lead["raw_input_id"])
            )
        assert body == raw


def test_correcting_twice_changes_nothing_the_second_time() -> None:
    lead = Lead(
        first_name="Jean",
        last_name="Dupond",
        full_name="Jean Dupond",
        phone=None,
        phone_raw="06 12",
        email="x@messagerie.lacentrale.fr",
        email_key=None,
        email_is_relay=True,
    )
    event = ClientRectifiedV1.model_validate(
        {
            "client_id": "c",
            "lead_ids": ["l"],
            "fields": ["full_name", "phone", "email"],
            "full_name": "Jean Dupont",
            "phone": NEW_PHONE,
            "email": None,
            "rectified_by": "t",
            "rectified_at": TUESDAY_11H,
        }
    )
    assert correct(lead, event) is True
    assert (lead.phone, lead.phone_raw, lead.email, lead.email_key, lead.email_is_relay) == (
        NEW_PHONE,
        None,
        None,
        None,
        False,
    )
    assert correct(lead, event) is False
