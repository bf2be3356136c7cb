"""An operator's message to the prospect: recorded as a contact attempt under the contact rules
(claim, open lead, a contact detail) and qualify's own (no opt-out, no bounced address), queued
for sending in the same transaction; refused with a problem otherwise, and then nothing is
recorded."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import func, select

from qualify.messages.handlers import record_reply
from qualify.models import ContactAttempt, OutgoingMessage
from qualify.suppression.repository import SuppressionRepository
from qualify.suppression.service import address_hash
from shared.db.session import session_scope
from shared.events.payloads import LeadMessageReceivedV1
from tests.qualify.conftest import QualifyApi
from tests.qualify.test_api import assert_problem, claimed, outbox

KEY = b"dev-only-privacy-key"


async def counts(api: QualifyApi) -> tuple[int, int]:
    async with session_scope(api.runtime.session_factory) as session:
        attempts = await session.scalar(select(func.count()).select_from(ContactAttempt))
        messages = await session.scalar(select(func.count()).select_from(OutgoingMessage))
    return int(attempts or 0), int(messages or 0)


async def send(client: httpx.AsyncClient, lead: str, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/leads/{lead}/messages", json=body)


async def test_an_email_is_recorded_as_an_attempt_and_queued(api: QualifyApi) -> None:
    lead = await api.add_lead(first_name="Camille")
    alice = await claimed(api, "alice", lead)
    response = await send(alice, lead, channel="email", text="La voiture est disponible samedi.")
    assert response.status_code == 201, response.text
    body = response.json()
    message, attempt = body["message"], body["attempt"]
    assert attempt["channel"] == "email"
    assert attempt["outcome"] == "no_answer"
    assert attempt["operator_id"] == api.ids["alice"]
    assert body["lead_status"] == "contacting"
    assert body["auto_disqualified"] is False
    assert message["status"] == "queued"
    assert message["kind"] == "operator_reply"
    assert message["attempt_id"] == attempt["id"]
    assert message["operator_id"] == api.ids["alice"]
    assert message["to"] == "camille@example.fr"
    assert message["text"].startswith(
        "Bonjour Camille,\n\nLa voiture est disponible samedi.\n\nalice\nVotre concession"
    )
    assert message["waiting_reason"] == "smtp_not_configured"
    events = [event_type for event_type, _ in await outbox(api, lead)]
    assert events == ["lead.contact-attempted.v1"]

    conversation = (await alice.get(f"/v1/leads/{lead}/conversation")).json()
    assert [item["id"] for item in conversation["items"]] == [message["id"]]
    lead_view = (await alice.get(f"/v1/leads/{lead}")).json()
    assert [item["id"] for item in lead_view["attempts"]] == [attempt["id"]]


async def test_a_follow_up_sms_from_the_template(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    response = await send(alice, lead, channel="sms", template="follow_up", outcome="voicemail")
    assert response.status_code == 201, response.text
    message = response.json()["message"]
    assert message["kind"] == "follow_up"
    assert message["to"] == "+33612345678"
    assert message["text"].startswith("Bonjour, nous avons essayé de vous joindre")
    assert message["text"].endswith("alice, Votre concession\nSTOP au 36111")
    assert response.json()["attempt"]["outcome"] == "voicemail"


async def test_refused_outside_the_rules_and_then_nothing_is_recorded(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice, bob = await api.client("alice"), await api.client("bob")
    assert_problem(await send(alice, lead, channel="sms", text="x"), 409, "claim-required")
    await claimed(api, "alice", lead)
    assert_problem(await send(bob, lead, channel="sms", text="x"), 409, "lead-claimed")
    assert_problem(await send(alice, "no-such-lead", channel="sms", text="x"), 404)

    no_text = assert_problem(await send(alice, lead, channel="email"), 422, "validation-error")
    assert [error["field"] for error in no_text["errors"]] == ["text"]
    too_long = assert_problem(await send(alice, lead, channel="sms", text="mot " * 200), 422)
    assert too_long["errors"][0]["type"] == "too_long"
    subject = assert_problem(await send(alice, lead, channel="sms", text="x", subject="y"), 422)
    assert subject["errors"][0]["field"] == "subject"
    unknown_reply = assert_problem(
        await send(alice, lead, channel="email", text="x", in_reply_to="nope"), 422
    )
    assert unknown_reply["errors"][0]["field"] == "in_reply_to"
    assert_problem(
        await send(alice, lead, channel="email", text="x", operator_id="me"), 422
    )  # bodies forbid unknown fields

    async with session_scope(api.runtime.session_factory) as session:
        repository = SuppressionRepository.from_session(session)
        await repository.block(
            [address_hash("+33612345678", KEY)], channel="sms", reason="stop", at=api.clock.now
        )
        await repository.block(
            [address_hash("camille@example.fr", KEY)],
            channel="email",
            reason="hard_bounce",
            at=api.clock.now,
        )
    opted_out = assert_problem(await send(alice, lead, channel="sms", text="x"), 409)
    assert opted_out["type"] == "/problems/contact-not-allowed"
    assert opted_out["reason"] == "opted_out"
    bounced = assert_problem(await send(alice, lead, channel="email", text="x"), 409)
    assert bounced["reason"] == "address_unreachable"
    assert "camille" not in json.dumps(bounced)
    assert "+336" not in json.dumps(opted_out)

    landline = await api.add_lead(phone="+33140000000", email=None)
    carol = await claimed(api, "carol", landline)
    no_mobile = assert_problem(
        await send(carol, landline, channel="sms", text="x"), 409, "missing-contact-detail"
    )
    assert no_mobile["channel"] == "sms"
    assert_problem(
        await send(carol, landline, channel="email", text="x"), 409, "missing-contact-detail"
    )
    assert await counts(api) == (0, 0)

    response = await alice.post(f"/v1/leads/{lead}/disqualification", json={"reason": "spam"})
    assert response.status_code == 201, response.text
    assert_problem(await send(alice, lead, channel="email", text="x"), 409, "lead-closed")
    assert await counts(api) == (0, 0)


async def test_a_relay_only_lead_is_answered_at_its_relay(api: QualifyApi) -> None:
    relay = "zz9@messagerie.lacentrale.fr"
    lead = await api.add_lead(source="lacentrale", email=None, relay_email=relay)
    alice = await claimed(api, "alice", lead)
    response = await send(alice, lead, channel="email", text="Bonjour")
    assert response.status_code == 201, response.text
    assert response.json()["message"]["to"] == relay


async def test_an_answer_to_the_prospects_email_threads(api: QualifyApi) -> None:
    lead = await api.add_lead()
    async with session_scope(api.runtime.session_factory) as session:
        reply = await record_reply(
            session,
            LeadMessageReceivedV1(
                lead_id=lead,
                message_id="in-1",
                channel="email",
                received_at=api.clock.now,
                sender="camille@example.fr",
                subject="Question sur la Clio",
                text="Est-elle disponible ?",
                email_message_id="<abc@example.fr>",
            ),
            key=KEY,
            outbox=api.runtime.outbox,
            now=api.clock.now,
        )
    assert reply is not None
    alice = await claimed(api, "alice", lead)
    api.clock.advance(minutes=3)
    response = await send(
        alice,
        lead,
        channel="email",
        text="Oui, elle l'est.",
        in_reply_to=reply.id,
        outcome="reached",
    )
    assert response.status_code == 201, response.text
    message = response.json()["message"]
    assert message["subject"] == "Re: Question sur la Clio"
    assert message["in_reply_to"] == reply.id
    assert response.json()["attempt"]["outcome"] == "reached"


async def test_unanswered_messages_count_towards_unreachable(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await claimed(api, "alice", lead)
    for number in range(3):  # unreachable_after_attempts=3 in these tests
        api.clock.advance(minutes=1)
        response = await send(alice, lead, channel="sms", text=f"Message {number}")
        assert response.status_code == 201, response.text
    assert response.json()["auto_disqualified"] is True
    assert response.json()["lead_status"] == "disqualified"
    assert await counts(api) == (3, 3)
