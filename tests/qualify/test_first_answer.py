"""The automatic first answer, decided with the queueing of a new lead (``lead.received.v1``):
one e-mail and one SMS to a mobile, at any hour, saying when the dealer will call; never on a
replay, never twice, never to a suppressed person or a blocked channel; a marketplace's relay
address is where the e-mail goes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from qualify.messages.first_answer import schedule_first_answer
from qualify.messages.loops import sender_wakeup
from qualify.models import OutgoingMessage, QueuedLead
from qualify.settings import QualifySettings
from qualify.suppression.repository import SuppressionRepository
from qualify.suppression.service import address_hash
from shared.db.session import session_scope
from shared.messaging.lead_tokens import LeadTokens
from tests.qualify.conftest import QualifyApi, open_api, paris_now, qualify_settings
from tests.support.clock import Clock

KEY = b"dev-only-privacy-key"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> QualifySettings:
    # On both backends: the lists' and the templates' checks are one statement each.
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}"
    )
    return qualify_settings(url, tmp_path, message_dealer_name="Garage Dupont")


@pytest.fixture
async def api(settings: QualifySettings, clock: Clock) -> AsyncIterator[QualifyApi]:
    async with open_api(settings, clock) as api:
        yield api


async def messages(api: QualifyApi, lead_id: str | None = None) -> list[OutgoingMessage]:
    async with session_scope(api.runtime.session_factory) as session:
        query = select(OutgoingMessage).order_by(OutgoingMessage.channel)
        if lead_id is not None:
            query = query.where(OutgoingMessage.lead_id == lead_id)
        return list((await session.scalars(query)).all())


async def test_a_new_lead_gets_one_email_and_one_sms_saying_when_the_dealer_calls(
    api: QualifyApi,
) -> None:
    wakeup = sender_wakeup(api.runtime)
    seen = wakeup.generation
    lead = await api.add_lead(
        first_name="Camille",
        vehicle={"make": "Renault", "model": "Clio", "year": 2020},
        first_answer=True,
    )
    email, sms = await messages(api, lead)
    assert (email.channel, sms.channel) == ("email", "sms")
    assert email.to_address == "camille@example.fr"
    assert sms.to_address == "+33612345678"
    for message in (email, sms):
        assert message.kind == "first_answer"
        assert message.status == "queued"
        assert message.dedupe_key == f"{lead}:first_answer:{message.channel}"
        assert message.created_at == api.clock.now
        assert message.expires_at == api.clock.now + timedelta(minutes=120)
        assert message.operator_id is None
        assert message.attempt_id is None
    # make run without SMTP or SMS provider: they wait, and say why.
    assert email.waiting_reason == "smtp_not_configured"
    assert sms.waiting_reason == "sms_not_configured"
    assert email.subject == "Votre demande : Renault Clio (2020)"
    assert "Garage Dupont vous appelle aujourd'hui avant 11h15." in email.text
    assert email.html is not None
    assert "<p>" in email.html
    assert sms.text == (
        "Bonjour Camille, merci pour votre demande (Renault Clio (2020)). Garage Dupont vous "
        "appelle aujourd'hui avant 11h15.\nSTOP au 36111"
    )
    tokens = LeadTokens("dev-only-lead-token-key")
    assert email.message_id_header is not None
    ref = tokens.ref_of_message_id(email.message_id_header)
    assert ref is not None
    assert (ref.lead_id, ref.message_key) == (lead, email.id)
    # The sender is woken once the transaction committed.
    assert wakeup.generation > seen


async def test_not_on_a_replay_and_never_twice(api: QualifyApi) -> None:
    lead = await api.add_lead(first_answer=True)
    again = await api.add_lead(lead_id=lead, first_answer=True)  # replayed under a new event id
    assert again == lead
    assert len(await messages(api, lead)) == 2
    # Even a second decision for the same lead (another replica, a retry) writes nothing.
    async with session_scope(api.runtime.session_factory) as session:
        row = await session.get(QueuedLead, lead)
        assert row is not None
        written = await schedule_first_answer(session, api.composer, row, now=api.clock.now)
    assert written == []
    assert len(await messages(api, lead)) == 2


async def test_at_night_and_on_weekends_it_says_when_the_centre_calls(api: QualifyApi) -> None:
    api.clock.now = paris_now(2026, 11, 28, 23, 10)  # Saturday night
    lead = await api.add_lead(first_answer=True)
    email, sms = await messages(api, lead)
    assert email.created_at == api.clock.now  # sent now: it answers the person's own request
    assert "vous appelle lundi avant 9h15" in sms.text
    api.clock.now = paris_now(2026, 11, 27, 18, 55)  # Friday 18:55, closing at 19:00
    friday = await api.add_lead(first_answer=True)
    assert "demain avant 9h10" in (await messages(api, friday))[1].text


async def test_marketplace_relay_address_receives_the_email(api: QualifyApi) -> None:
    relay = "a1b2c3@messagerie.lacentrale.fr"
    lead = await api.add_lead(source="lacentrale", email=None, relay_email=relay, first_answer=True)
    email, _ = await messages(api, lead)
    assert email.to_address == relay


async def test_sms_only_to_a_mobile_and_email_only_when_known(api: QualifyApi) -> None:
    landline = await api.add_lead(phone="+33140000000", first_answer=True)
    assert [message.channel for message in await messages(api, landline)] == ["email"]
    no_email = await api.add_lead(email=None, first_answer=True)
    assert [message.channel for message in await messages(api, no_email)] == ["sms"]
    nothing = await api.add_lead(email=None, phone=None, first_answer=True)
    assert await messages(api, nothing) == []


async def test_never_to_a_suppressed_person_nor_a_blocked_channel(api: QualifyApi) -> None:
    async with session_scope(api.runtime.session_factory) as session:
        repository = SuppressionRepository.from_session(session)
        await repository.add(
            [address_hash("+33699999999", KEY)], reason="objection", at=api.clock.now
        )
        await repository.block(
            [address_hash("+33611111111", KEY)], channel="sms", reason="stop", at=api.clock.now
        )
        await repository.block(
            [address_hash("Bounced@Example.fr", KEY)],
            channel="email",
            reason="hard_bounce",
            at=api.clock.now,
        )
    suppressed = await api.add_lead(phone="+33699999999", first_answer=True)
    assert await messages(api, suppressed) == []  # not even the e-mail: the person objected
    stopped = await api.add_lead(phone="+33611111111", first_answer=True)
    assert [message.channel for message in await messages(api, stopped)] == ["email"]
    bounced = await api.add_lead(email="bounced@example.fr", first_answer=True)
    assert [message.channel for message in await messages(api, bounced)] == ["sms"]


async def test_the_first_answer_uses_the_most_specific_template_of_each_channel(
    api: QualifyApi,
) -> None:
    async def create(**body: str) -> None:
        response = await api.base.post("/v1/message-templates", json=body)
        assert response.status_code == 201, response.text

    await create(kind="first_answer", channel="sms", text="Tous {{first_name}}")
    await create(kind="first_answer", channel="sms", source="facebook", text="Facebook")
    await create(
        kind="first_answer",
        channel="email",
        source="leboncoin",
        subject="Bonjour {{first_name}}",
        text="Leboncoin {{first_name}}",
    )
    await create(kind="follow_up", channel="sms", text="Relance {{first_name}}")  # another kind
    leboncoin = await api.add_lead(source="leboncoin", first_name="Camille", first_answer=True)
    email, sms = await messages(api, leboncoin)
    assert (email.subject, email.text.split("\n")[0]) == ("Bonjour Camille", "Leboncoin Camille")
    assert sms.text.split("\n")[0] == "Tous Camille"
    facebook = await api.add_lead(source="facebook", first_name="Camille", first_answer=True)
    email, sms = await messages(api, facebook)
    assert "Leboncoin" not in email.text  # the built-in default: no override for facebook
    assert sms.text.split("\n")[0] == "Facebook"


async def test_settings_turn_each_channel_off(tmp_path: Path, clock: Clock) -> None:
    settings = qualify_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'off.db'}", tmp_path, message_first_answer_sms=False
    )
    async with open_api(settings, clock) as api:
        lead = await api.add_lead(first_answer=True)
        assert [message.channel for message in await messages(api, lead)] == ["email"]
