"""Rectification (Art. 16), dispatch's share: ``privacy.client-rectified.v1`` corrects the contact
in the stored qualification, its keyed hashes and the messages kept for retries and replay, and
every seller whose tool received the lead gets a signed ``lead.updated``; idempotent; export and
erasure still reach everything."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from dispatch.models import DispatchLead, LeadContactKey, WebhookDelivery, metadata
from dispatch.privacy.handlers import dispatch_eraser, suppress
from dispatch.privacy.rectification import CLIENT_RECTIFIED, rectification_handler
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.catalogue import spec_for
from shared.events.privacy import (
    ClientRectifiedV1,
    ContactSuppressedV1,
    ErasureRequestedV1,
    ExportRequestedV1,
)
from shared.privacy import ERASURE_REQUESTED, contact_hash, erasure_handler, lead_scoped_exporter
from tests.dispatch.conftest import DispatchApi, Receiver
from tests.support.clock import Clock

OLD_PHONE = "+33612345678"
NEW_PHONE = "+33698765432"
NEW_NAME = "Jeanne Martin-Durand"


def _event(lead_ids: list[str], clock: Clock, **values: object) -> Envelope:
    payload = ClientRectifiedV1.model_validate(
        {
            "client_id": "client-1",
            "lead_ids": lead_ids,
            "fields": ["phone", "full_name"],
            "phone": NEW_PHONE,
            "full_name": NEW_NAME,
            "rectified_by": "token-dpo",
            "rectified_at": clock.now,
            **values,
        }
    )
    return Envelope(
        source="/vo-leads/crm",
        type=CLIENT_RECTIFIED,
        subject="client-1",
        data=payload.model_dump(mode="json"),
    )


async def _bodies(dispatch: DispatchApi, lead_id: str) -> list[tuple[str, str, str]]:
    async with dispatch.runtime.session_factory() as session:
        rows = await session.execute(
            select(WebhookDelivery.seller_id, WebhookDelivery.event_type, WebhookDelivery.body)
            .where(WebhookDelivery.lead_id == lead_id)
            .order_by(WebhookDelivery.created_at)
        )
        return [(row.seller_id, row.event_type, row.body) for row in rows]


async def test_a_rectified_contact_reaches_the_lead_and_the_tools_that_hold_it(
    dispatch: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    key = dispatch.settings.privacy_hmac_key.get_secret_value().encode()
    site = await dispatch.site()
    manager = await dispatch.seller(
        "Manager", webhook_url=receiver.url("manager"), shifts="mon-fri 06:00-07:00"
    )
    receiver.secrets["manager"] = manager["webhook_secret"]
    body = {key: site[key] for key in ("id", "name", "postcode", "opening_hours")}
    replaced = await dispatch.admin.put(
        "/v1/sites/lyon", json=body | {"manager_seller_id": manager["id"]}
    )
    assert replaced.status_code == 200
    lead = await dispatch.qualify()  # nobody on shift: escalated, the manager is told (ids only)
    sellers = {}
    for name in ("ana", "bob"):
        seller = await dispatch.seller(name, webhook_url=receiver.url(name))
        receiver.secrets[name] = seller["webhook_secret"]
        sellers[name] = seller["id"]
    boss = await dispatch.client_for_roles("manager")
    moved = await boss.post(f"/v1/leads/{lead}/assign", json={"seller_id": sellers["ana"]})
    ana_client = await dispatch.seller_client(sellers["ana"])
    await ana_client.post(
        f"/v1/assignments/{moved.json()['assignment']['id']}/decline", json={"reason": "busy"}
    )  # → offered to Bob
    other = await dispatch.qualify()  # another client's lead, untouched
    await dispatch.deliver()
    # Someone objected with the new phone number before: the corrected lead gets no follow-ups.
    async with session_scope(dispatch.runtime.session_factory) as session:
        objection = ContactSuppressedV1(
            contact_hashes=[contact_hash(NEW_PHONE, key)],
            reason="objection",
            suppressed_at=clock.now,
        )
        await suppress(session, objection, clock.now)
    clock.advance(minutes=1)
    handler = rectification_handler(dispatch.settings, dispatch.clock)

    async with session_scope(dispatch.runtime.session_factory) as session:
        await handler(session, _event([lead, "unknown-lead"], clock))

    async with dispatch.runtime.session_factory() as session:
        stored = await session.get(DispatchLead, lead)
        untouched = await session.get(DispatchLead, other)
        hashes = set(
            (
                await session.scalars(
                    select(LeadContactKey.contact_hash).where(LeadContactKey.lead_id == lead)
                )
            ).all()
        )
    assert stored is not None
    assert untouched is not None
    contact = stored.qualification["contact"]
    assert (contact["phone"], contact["full_name"]) == (NEW_PHONE, NEW_NAME)
    assert (contact["first_name"], contact["last_name"]) == (None, None)
    assert untouched.qualification["contact"]["phone"] == OLD_PHONE
    assert hashes == {contact_hash(NEW_PHONE, key)}  # objections match the new number
    assert stored.followups_blocked is True
    # Kept messages (for retries, replay and the feed) no longer carry the old number.
    bodies = await _bodies(dispatch, lead)
    assert all(OLD_PHONE not in body for _, _, body in bodies)
    assert sum(NEW_PHONE in body for _, kind, body in bodies if kind == "assignment.offered") == 2
    # The tools that received the contact are told, signed; the manager's got ids only: not.
    assert await dispatch.deliver() == 2
    for name in ("ana", "bob"):
        [update] = [m for m in receiver.of(name) if m.event_type == "lead.updated"]
        assert update.payload["data"]["lead_id"] == lead
        assert update.payload["data"]["contact"]["phone"] == NEW_PHONE
        assert update.payload["data"]["fields"] == ["phone", "full_name"]
    assert [m.event_type for m in receiver.of("manager")] == ["lead.escalated"]
    assert receiver.rejected == 0

    # Redelivered under a new event id: nothing changes, no second webhook.
    async with session_scope(dispatch.runtime.session_factory) as session:
        await handler(session, _event([lead], clock))
    assert len(await _bodies(dispatch, lead)) == len(bodies)

    # Export and erasure still reach everything, the new messages included.
    export = lead_scoped_exporter(metadata)
    async with dispatch.runtime.session_factory() as session:
        exported = await export(
            session,
            ExportRequestedV1(
                request_id="r1", client_id="client-1", lead_ids=[lead], requested_at=clock.now
            ),
        )
    assert exported["dispatch_lead"][0]["qualification"]["contact"]["phone"] == NEW_PHONE
    assert {row["event_type"] for row in exported["webhook_delivery"]} >= {"lead.updated"}
    erase = erasure_handler(
        service="dispatch",
        outbox=dispatch.runtime.infra.outbox_event,
        erased_subjects=dispatch.runtime.infra.erased_subject,
        erase=dispatch_eraser(dispatch.clock),
    )
    request = ErasureRequestedV1(
        request_id=str(uuid.uuid4()), client_id="client-1", lead_ids=[lead], requested_at=clock.now
    )
    async with session_scope(dispatch.runtime.session_factory) as session:
        await erase(
            session,
            Envelope(
                source="/vo-leads/crm",
                type=ERASURE_REQUESTED,
                subject="client-1",
                data=request.model_dump(mode="json"),
            ),
        )
    assert await _bodies(dispatch, lead) == []


async def test_removing_a_field_and_a_lead_never_routed_here(
    dispatch: DispatchApi, clock: Clock
) -> None:
    await dispatch.site()
    await dispatch.seller("Ana")
    lead = await dispatch.qualify(
        contact={"full_name": "Jeanne Martin", "phone": OLD_PHONE, "email": "j@example.fr"}
    )
    handler = rectification_handler(dispatch.settings, dispatch.clock)
    async with session_scope(dispatch.runtime.session_factory) as session:
        await handler(session, _event([lead], clock, fields=["email"], phone=None, full_name=None))
    async with dispatch.runtime.session_factory() as session:
        stored = await session.get(DispatchLead, lead)
    assert stored is not None
    assert stored.qualification["contact"]["email"] is None  # named without a value: removed
    assert stored.qualification["contact"]["phone"] == OLD_PHONE


def test_the_event_names_every_value_it_carries() -> None:
    spec = spec_for(CLIENT_RECTIFIED)
    assert (spec.topic, spec.producer, spec.personal_data) == ("vo.privacy", "crm", True)
    base = {
        "client_id": "c",
        "lead_ids": ["l"],
        "rectified_by": "t",
        "rectified_at": "2026-11-24T10:00:00+00:00",
    }
    with pytest.raises(ValidationError):
        ClientRectifiedV1.model_validate(base | {"fields": ["phone"], "email": "x@example.fr"})
    with pytest.raises(ValidationError):
        ClientRectifiedV1.model_validate(base | {"fields": []})
    with pytest.raises(ValidationError):
        ClientRectifiedV1.model_validate(base | {"fields": ["phone", "phone"]})
    with pytest.raises(ValidationError):
        ClientRectifiedV1.model_validate(base | {"fields": ["address"]})
