"""GDPR in dispatch: an erasure request deletes every row of the leads (and releases the sellers'
load) and is answered; an objection (contact suppressed) stops the follow-ups."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from dispatch.models import (
    Assignment,
    DispatchLead,
    LeadContactKey,
    Timer,
    WebhookAttempt,
    WebhookDelivery,
)
from dispatch.privacy.handlers import dispatch_eraser, suppression_handler
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.privacy import ContactSuppressedV1, ErasureRequestedV1
from shared.privacy import ERASURE_REQUESTED, contact_hash, erasure_handler
from tests.dispatch.conftest import DispatchApi, Receiver


async def test_erasure_deletes_the_leads_rows_and_answers(
    dispatch: DispatchApi, receiver: Receiver
) -> None:
    import httpx

    await dispatch.site()
    seller = await dispatch.seller("A", webhook_url=receiver.url("a"))
    receiver.secrets["a"] = seller["webhook_secret"]
    erased_lead = await dispatch.qualify()
    kept_lead = await dispatch.qualify()
    async with httpx.AsyncClient() as client:
        await dispatch.sender(client).send_due()
    assert await dispatch.count(WebhookAttempt) == 2
    assert (await dispatch.admin.get(f"/v1/sellers/{seller['id']}")).json()["open_count"] == 2

    request = ErasureRequestedV1(
        request_id=str(uuid.uuid4()),
        client_id="client-1",
        lead_ids=[erased_lead],
        requested_at=dispatch.clock.now,
    )
    handler = erasure_handler(
        service="dispatch",
        outbox=dispatch.runtime.infra.outbox_event,
        erased_subjects=dispatch.runtime.infra.erased_subject,
        erase=dispatch_eraser(lambda: dispatch.clock.now),
    )
    envelope = Envelope(
        source="/vo-leads/crm",
        type=ERASURE_REQUESTED,
        subject="client-1",
        data=request.model_dump(mode="json"),
    )
    async with session_scope(dispatch.runtime.session_factory) as session:
        await handler(session, envelope)

    for model, column in (
        (DispatchLead, DispatchLead.lead_id),
        (Assignment, Assignment.lead_id),
        (Timer, Timer.lead_id),
        (WebhookDelivery, WebhookDelivery.lead_id),
        (LeadContactKey, LeadContactKey.lead_id),
    ):
        assert await dispatch.count(model, column == erased_lead) == 0, model
        assert await dispatch.count(model, column == kept_lead) >= 1, model
    assert await dispatch.count(WebhookAttempt) == 1  # the erased lead's log went with it
    assert (await dispatch.admin.get(f"/v1/sellers/{seller['id']}")).json()["open_count"] == 1
    [answer] = await dispatch.events("privacy.erasure-completed.v1")
    assert answer["data"]["service"] == "dispatch"
    assert answer["data"]["erased"]["dispatch_lead"] == 1
    assert [e for e in await dispatch.events() if erased_lead in str(e)] == []

    # The seller's tool that received the lead is told to erase it, with the lead id only.
    assert answer["data"]["erased"]["lead_erased_webhooks"] == 1
    async with httpx.AsyncClient() as client:
        await dispatch.sender(client).send_due()
    [notice] = [m for m in receiver.of("a") if m.event_type == "lead.erased"]
    assert notice.payload["data"]["lead_id"] == erased_lead
    assert set(notice.payload["data"]) == {"lead_id", "erased_at"}


async def test_objection_stops_followups(dispatch: DispatchApi) -> None:
    await dispatch.site()
    seller = await dispatch.seller("A")
    client = await dispatch.seller_client(seller["id"])
    lead = await dispatch.qualify()
    offer = (await dispatch.assignments(lead))[0]
    await client.post(f"/v1/assignments/{offer['id']}/accept")
    await client.post(f"/v1/assignments/{offer['id']}/contacted", json={"channel": "phone"})
    pending = Timer.kind == "followup", Timer.fired_at.is_(None)
    assert await dispatch.count(Timer, *pending) == 1

    key = dispatch.settings.privacy_hmac_key.get_secret_value().encode()
    event = ContactSuppressedV1(
        contact_hashes=[contact_hash("+33612345678", key)],
        reason="objection",
        suppressed_at=dispatch.clock.now,
    )
    envelope = Envelope(
        source="/vo-leads/crm",
        type="privacy.contact-suppressed.v1",
        subject=event.contact_hashes[0],
        data=event.model_dump(mode="json"),
    )
    async with session_scope(dispatch.runtime.session_factory) as session:
        await suppression_handler(dispatch.clock)(session, envelope)
    assert await dispatch.count(Timer, *pending) == 0

    # A new enquiry from the same person is still answered, without follow-ups.
    again = await dispatch.qualify()
    offer = (await dispatch.assignments(again))[0]
    await client.post(f"/v1/assignments/{offer['id']}/accept")
    response = await client.post(
        f"/v1/assignments/{offer['id']}/contacted", json={"channel": "phone"}
    )
    assert response.status_code == 200
    assert await dispatch.count(Timer, *pending) == 0
    async with dispatch.runtime.session_factory() as session:
        blocked = await session.scalar(
            select(DispatchLead.followups_blocked).where(DispatchLead.lead_id == again)
        )
    assert blocked is True


async def test_export_sends_the_leads_rows(dispatch: DispatchApi) -> None:
    from dispatch.models import metadata
    from shared.events.privacy import ExportRequestedV1
    from shared.privacy import (
        EXPORT_PROVIDED,
        EXPORT_REQUESTED,
        export_handler,
        lead_scoped_exporter,
    )

    await dispatch.site()
    await dispatch.seller("A")
    lead = await dispatch.qualify()
    other = await dispatch.qualify()
    request = ExportRequestedV1(
        request_id=str(uuid.uuid4()),
        client_id="client-1",
        lead_ids=[lead],
        requested_at=dispatch.clock.now,
    )
    handler = export_handler(
        service="dispatch",
        outbox=dispatch.runtime.infra.outbox_event,
        export=lead_scoped_exporter(metadata),
    )
    envelope = Envelope(
        source="/vo-leads/crm",
        type=EXPORT_REQUESTED,
        subject="client-1",
        data=request.model_dump(mode="json"),
    )
    async with session_scope(dispatch.runtime.session_factory) as session:
        await handler(session, envelope)
    [share] = await dispatch.events(EXPORT_PROVIDED)
    data = share["data"]["data"]
    assert [row["lead_id"] for row in data["dispatch_lead"]] == [lead]
    assert [row["lead_id"] for row in data["assignment"]] == [lead]
    assert other not in str(data)
