"""Rectification (Art. 16), qualify's share: crm's ``privacy.client-rectified.v1`` reaches
qualify's worker; the queue's copy of the lead takes the corrected name, phone and e-mail, the
messages still queued go to the corrected number and address (a relay address is left alone), a
removed e-mail cancels what was queued to it; another lead is untouched; a redelivery under
another event id changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from qualify.bootstrap import SERVICE
from qualify.models import OutgoingMessage, QueuedLead, infra
from qualify.settings import QualifySettings
from shared.db.session import session_scope
from shared.worker import Worker
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.support.clock import Clock
from tests.support.harness import eventually
from tests.support.rectification import publish_privacy, rectified

OLD_PHONE = "+33612345678"
NEW_PHONE = "+33698765432"
RELAY = "a1b2c3@messagerie.leboncoin.fr"
CLIENT = "client-1"  # one key: the events of a client keep their order on the privacy topic
CORRECTION: dict[str, Any] = {
    "fields": ["full_name", "phone", "email"],
    "full_name": "Camille Durand-Roy",
    "phone": NEW_PHONE,
    "email": "camille.roy@example.fr",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> QualifySettings:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}"
    )
    return qualify_settings(url, tmp_path, message_dealer_name="Garage Dupont")


@asynccontextmanager
async def with_worker(settings: QualifySettings, clock: Clock) -> AsyncIterator[QualifyApi]:
    async with open_api(settings, clock) as api:
        worker = Worker(settings, infra=infra, consumers=SERVICE.consumers, clock=clock)
        await worker.start()
        try:
            yield api
        finally:
            await worker.stop()


async def _lead(api: QualifyApi, lead_id: str) -> QueuedLead:
    async with session_scope(api.runtime.session_factory) as session:
        lead = await session.get(QueuedLead, lead_id)
    assert lead is not None
    return lead


async def _messages(api: QualifyApi, lead_id: str) -> dict[str, OutgoingMessage]:
    async with session_scope(api.runtime.session_factory) as session:
        rows = await session.scalars(
            select(OutgoingMessage).where(OutgoingMessage.lead_id == lead_id)
        )
        return {message.channel: message for message in rows}


async def test_the_queue_and_its_queued_messages_take_the_corrected_contact(
    settings: QualifySettings, clock: Clock
) -> None:
    async with with_worker(settings, clock) as api:
        lead_id = await api.add_lead(first_name="Camille", first_answer=True)
        relayed = await api.add_lead(first_name="Camille", relay_email=RELAY, first_answer=True)
        other = await api.add_lead(phone="+33611111111", email="o@ex.fr", first_answer=True)
        before = await _messages(api, lead_id)
        assert (before["sms"].to_address, before["email"].to_address) == (
            OLD_PHONE,
            "camille@example.fr",
        )
        assert (await _messages(api, relayed))["email"].to_address == RELAY
        clock.advance(minutes=1)

        await publish_privacy(
            settings,
            [
                rectified(
                    [lead_id, relayed, "not-in-the-queue"],
                    clock.now,
                    client_id=CLIENT,
                    **CORRECTION,
                )
            ],
        )

        async def corrected() -> QueuedLead | None:
            lead = await _lead(api, relayed)
            return lead if lead.phone == NEW_PHONE else None

        await eventually(corrected)
        for corrected_id in (lead_id, relayed):
            lead = await _lead(api, corrected_id)
            assert (lead.full_name, lead.first_name) == ("Camille Durand-Roy", None)
            assert (lead.phone, lead.email) == (NEW_PHONE, "camille.roy@example.fr")
        after = await _messages(api, lead_id)
        assert (after["sms"].to_address, after["email"].to_address) == (
            NEW_PHONE,
            "camille.roy@example.fr",
        )
        assert {message.status for message in after.values()} == {"queued"}
        relayed_messages = await _messages(api, relayed)
        assert relayed_messages["email"].to_address == RELAY  # not the person's address
        assert relayed_messages["sms"].to_address == NEW_PHONE
        untouched = await _lead(api, other)
        assert (untouched.phone, untouched.email) == ("+33611111111", "o@ex.fr")

        # The same correction again under a new event id (changes nothing), then the e-mail
        # removed: what was queued to it is cancelled, the SMS stays.
        await publish_privacy(
            settings,
            [
                rectified([lead_id], clock.now, client_id=CLIENT, **CORRECTION),
                rectified([lead_id], clock.now, client_id=CLIENT, fields=["email"], email=None),
            ],
        )

        async def cancelled() -> dict[str, OutgoingMessage] | None:
            found = await _messages(api, lead_id)
            return found if found["email"].status == "cancelled" else None

        final = await eventually(cancelled)
        assert final["email"].reason == "contact_removed"
        assert (final["sms"].status, final["sms"].to_address) == ("queued", NEW_PHONE)
        assert (await _lead(api, lead_id)).email is None
        assert final["email"].finished_at is not None
