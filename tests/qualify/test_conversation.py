"""The conversation with the prospect: ingest's inbound events (a reply, a bounce) join the
lead's conversation; a reply marks the lead unread (lead and queue) until read; a hard bounce
bounces the message and blocks the address; a STOP blocks SMS to the number at once; the
one-click unsubscribe link blocks e-mail. Same access rules as the lead."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from qualify.messages.handlers import bounce_handler, reply_handler
from qualify.models import BlockedContact, OutgoingMessage
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import LeadMessageBouncedV1, LeadMessageReceivedV1
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import assert_problem, claimed, outbox
from tests.support.clock import Clock

KEY = b"dev-only-privacy-key"


@pytest.fixture
async def api(tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    settings = qualify_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}",
        tmp_path,
        message_public_base_url="https://leads.example.fr",
    )
    async with open_api(settings, clock) as api:
        yield api


async def deliver(api: QualifyApi, event_type: str, payload: Any) -> None:
    """Apply an inbound event as qualify's consumer does (its handler, one transaction)."""
    runtime = api.runtime
    handler = (reply_handler if event_type == "lead.message-received.v1" else bounce_handler)(
        runtime.outbox, runtime.clock, KEY
    )
    envelope = Envelope(
        source="/vo-leads/ingest",
        type=event_type,
        subject=payload.lead_id,
        data=payload.model_dump(mode="json"),
    )
    async with session_scope(runtime.session_factory) as session:
        await handler(session, envelope)


def reply(lead: str, **values: Any) -> LeadMessageReceivedV1:
    data: dict[str, Any] = {
        "lead_id": lead,
        "message_id": "imap-1",
        "channel": "email",
        "received_at": "2026-11-24T10:05:00Z",
        "sender": "camille@example.fr",
        "subject": "Re: Votre demande",
        "text": "Rappelez-moi après 18 h, merci.",
        **values,
    }
    return LeadMessageReceivedV1.model_validate(data)


async def outgoing(api: QualifyApi, lead: str) -> list[OutgoingMessage]:
    async with session_scope(api.runtime.session_factory) as session:
        return list(
            (
                await session.scalars(
                    select(OutgoingMessage)
                    .where(OutgoingMessage.lead_id == lead)
                    .order_by(OutgoingMessage.channel)
                )
            ).all()
        )


async def test_a_reply_joins_the_conversation_and_marks_the_lead_unread(api: QualifyApi) -> None:
    lead = await api.add_lead(first_answer=True)
    other = await api.add_lead(first_answer=True)
    email, _sms = await outgoing(api, lead)
    api.clock.advance(minutes=5)
    await deliver(api, "lead.message-received.v1", reply(lead, in_reply_to=email.id))
    # A redelivery under a new event id changes nothing.
    await deliver(api, "lead.message-received.v1", reply(lead, in_reply_to=email.id))
    # A reply naming another lead's message is not linked to it.
    other_email, _ = await outgoing(api, other)
    await deliver(
        api,
        "lead.message-received.v1",
        reply(
            lead,
            message_id="imap-2",
            in_reply_to=other_email.id,
            text="Et le prix ?",
            received_at="2026-11-24T10:06:00Z",
        ),
    )

    alice = await api.client("alice")
    conversation = (await alice.get(f"/v1/leads/{lead}/conversation")).json()
    assert conversation["unread_replies"] == 2
    items = conversation["items"]
    assert [(item["direction"], item["channel"]) for item in items] == [
        ("out", "email"),
        ("out", "sms"),
        ("in", "email"),
        ("in", "email"),
    ]
    first_reply = items[2]
    assert first_reply["text"] == "Rappelez-moi après 18 h, merci."
    assert first_reply["sender"] == "camille@example.fr"
    assert first_reply["in_reply_to"] == email.id
    assert first_reply["read_at"] is None
    assert items[3]["in_reply_to"] is None
    assert {item["id"] for item in items}.isdisjoint(
        {
            item["id"]
            for item in (await alice.get(f"/v1/leads/{other}/conversation")).json()["items"]
        }
    )

    assert (await alice.get(f"/v1/leads/{lead}")).json()["unread_replies"] == 2
    queue = {item["lead_id"]: item for item in (await alice.get("/v1/queue")).json()["items"]}
    assert queue[lead]["unread_replies"] == 2
    assert queue[other]["unread_replies"] == 0

    read = await alice.post(f"/v1/leads/{lead}/conversation/read")
    assert read.status_code == 200, read.text
    assert read.json() == {"lead_id": lead, "marked_read": 2, "unread_replies": 0}
    conversation = (await alice.get(f"/v1/leads/{lead}/conversation")).json()
    assert conversation["unread_replies"] == 0
    assert conversation["items"][2]["read_by"] == api.ids["alice"]
    queue = {item["lead_id"]: item for item in (await alice.get("/v1/queue")).json()["items"]}
    assert queue[lead]["unread_replies"] == 0


async def test_the_conversation_follows_the_leads_access_rules(api: QualifyApi) -> None:
    lead = await api.add_lead(first_answer=True)
    await claimed(api, "alice", lead)
    bob = await api.client("bob")
    assert_problem(await bob.get(f"/v1/leads/{lead}/conversation"), 403, "forbidden")
    assert_problem(await bob.post(f"/v1/leads/{lead}/conversation/read"), 403, "forbidden")
    manager = await api.client("mia", roles=("manager",))
    assert (await manager.get(f"/v1/leads/{lead}/conversation")).status_code == 200
    assert_problem(await bob.get("/v1/leads/nope/conversation"), 404, "lead-not-found")
    seller = await api.client("sam", roles=("seller",))
    assert_problem(await seller.get(f"/v1/leads/{lead}/conversation"), 403, "forbidden")


async def test_a_reply_to_an_unknown_lead_is_ignored(api: QualifyApi) -> None:
    await deliver(api, "lead.message-received.v1", reply("unknown-lead"))


async def test_a_hard_bounce_bounces_the_message_and_blocks_the_address(api: QualifyApi) -> None:
    lead = await api.add_lead(email="nobody@example.fr", first_answer=True)
    email, _ = await outgoing(api, lead)
    async with session_scope(api.runtime.session_factory) as session:
        row = await session.get(OutgoingMessage, email.id)
        assert row is not None
        row.status, row.sent_at = "sent", api.clock.now  # as the sender records it
    # Another e-mail to the same address is still queued (another lead of the same person).
    second = await api.add_lead(email="nobody@example.fr", first_answer=True)

    soft = LeadMessageBouncedV1(
        lead_id=lead, message_id=email.id, bounce="soft", status="4.2.2", bounced_at=api.clock.now
    )
    await deliver(api, "lead.message-bounced.v1", soft)
    assert (await outgoing(api, lead))[0].status == "sent"
    assert (await outgoing(api, lead))[0].bounce == "soft"

    hard = LeadMessageBouncedV1(
        lead_id=lead,
        message_id=email.id,
        bounce="hard",
        status="5.1.1",
        smtp_code=550,
        bounced_at=api.clock.now + timedelta(seconds=30),
    )
    await deliver(api, "lead.message-bounced.v1", hard)
    bounced = (await outgoing(api, lead))[0]
    assert (bounced.status, bounced.bounce, bounced.bounce_status) == ("bounced", "hard", "5.1.1")
    assert (await outgoing(api, second))[0].status == "cancelled"
    assert (await outgoing(api, second))[0].reason == "unreachable"
    events = [(kind, data) for kind, data in await outbox(api, lead)]
    assert events[-1][0] == "lead.message-status-changed.v1"
    assert events[-1][1]["status"] == "bounced"
    assert events[-1][1]["reason"] == "hard_bounce"
    assert "nobody" not in str(events)

    # No more e-mails to that address: neither a first answer nor an operator's.
    third = await api.add_lead(email="nobody@example.fr", first_answer=True)
    assert [message.channel for message in await outgoing(api, third)] == ["sms"]
    alice = await claimed(api, "alice", third)
    refused = await alice.post(
        f"/v1/leads/{third}/messages", json={"channel": "email", "text": "x"}
    )
    assert assert_problem(refused, 409)["reason"] == "address_unreachable"

    # A bounce of another lead's message id, or an unknown one, changes nothing.
    await deliver(
        api,
        "lead.message-bounced.v1",
        LeadMessageBouncedV1(
            lead_id=third, message_id=email.id, bounce="hard", bounced_at=api.clock.now
        ),
    )


async def test_stop_suppresses_sms_to_that_number_at_once(api: QualifyApi) -> None:
    lead = await api.add_lead(first_answer=True)
    _email, sms = await outgoing(api, lead)
    assert sms.status == "queued"
    await deliver(
        api,
        "lead.message-received.v1",
        reply(
            lead,
            message_id="ovh-77",
            channel="sms",
            sender="+33612345678",
            subject=None,
            text="STOP",
            stop_request=True,
        ),
    )
    email, sms = await outgoing(api, lead)
    assert (sms.status, sms.reason) == ("cancelled", "opted_out")
    assert email.status == "queued"  # the STOP was about SMS
    async with session_scope(api.runtime.session_factory) as session:
        blocks = (await session.scalars(select(BlockedContact))).all()
    assert [(block.channel, block.reason) for block in blocks] == [("sms", "stop")]
    assert "+336" not in blocks[0].contact_hash
    events = [kind for kind, _ in await outbox(api, lead)]
    assert "lead.opted-out.v1" in events
    opted = next(data for kind, data in await outbox(api, lead) if kind == "lead.opted-out.v1")
    assert opted["channel"] == "sms"
    assert opted["via"] == "stop_reply"

    # The STOP shows in the conversation, and no SMS goes to that number any more.
    alice = await api.client("alice")
    items = (await alice.get(f"/v1/leads/{lead}/conversation")).json()["items"]
    assert items[-1]["stop_request"] is True
    another = await api.add_lead(first_answer=True)
    assert [message.channel for message in await outgoing(api, another)] == ["email"]
    await claimed(api, "alice", lead)
    refused = await alice.post(f"/v1/leads/{lead}/messages", json={"channel": "sms", "text": "x"})
    assert assert_problem(refused, 409)["reason"] == "opted_out"
    allowed = await alice.post(f"/v1/leads/{lead}/messages", json={"channel": "email", "text": "x"})
    assert allowed.status_code == 201, allowed.text


async def test_one_click_unsubscribe_blocks_email(api: QualifyApi) -> None:
    lead = await api.add_lead(first_answer=True)
    email, _ = await outgoing(api, lead)
    token = api.composer.tokens.token(lead)
    anonymous = api.client_as(None)
    page = await anonymous.get(f"/v1/unsubscribe/{token}")
    assert page.status_code == 200
    assert '<form method="post"' in page.text
    assert (await outgoing(api, lead))[0].status == "queued"  # a GET never unsubscribes

    response = await anonymous.post(
        f"/v1/unsubscribe/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    email, sms = await outgoing(api, lead)
    assert (email.status, email.reason) == ("cancelled", "opted_out")
    assert sms.status == "queued"
    opted = next(data for kind, data in await outbox(api, lead) if kind == "lead.opted-out.v1")
    assert opted == {
        "lead_id": lead,
        "channel": "email",
        "via": "one_click",
        "opted_out_at": "2026-11-24T10:00:00Z",
    }
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert_problem(await anonymous.post(f"/v1/unsubscribe/{forged}"), 404, "unknown-link")
    assert_problem(await anonymous.get(f"/v1/unsubscribe/{forged}"), 404, "unknown-link")


async def test_openapi_lists_the_messaging_api(api: QualifyApi) -> None:
    document = (await api.base.get("/openapi.json")).json()
    paths = document["paths"]
    assert {
        "/v1/leads/{lead_id}/messages",
        "/v1/leads/{lead_id}/conversation",
        "/v1/leads/{lead_id}/conversation/read",
        "/v1/message-templates",
        "/v1/message-templates/catalogue",
        "/v1/message-templates/preview",
        "/v1/message-templates/{template_id}",
        "/v1/unsubscribe/{token}",
        "/v1/sms/delivery-receipts/{secret}",
    } <= set(paths)
    post = paths["/v1/leads/{lead_id}/messages"]["post"]["responses"]
    assert {"201", "401", "403", "404", "409", "422"} <= set(post)
    assert "application/problem+json" in post["409"]["content"]
