"""Messages claimed at birth (``dispatch.webhooks.handoff``): the worker's unit of work writes a
message leased to its own sender and hands it over once committed. The sender sends it without a
claim transaction; no other sender takes it during the lease; a rolled-back unit of work hands
nothing over; a message whose sender died is claimed by another one after the lease (at least
once, never lost); a hand-over whose lease ended goes by the usual claiming pass; a full queue
writes messages due at once. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.assignments.intake import on_qualified
from dispatch.models import WebhookDelivery
from shared.db.session import session_scope
from shared.events.payloads import ContactV1, LeadQualifiedV1
from tests.dispatch.conftest import DispatchApi, Receiver
from tests.support.clock import Clock


@pytest.fixture
def api(dispatch_on_either: DispatchApi) -> DispatchApi:
    return dispatch_on_either


async def _seller(dispatch: DispatchApi, receiver: Receiver, name: str) -> None:
    seller = await dispatch.seller(name, webhook_url=receiver.url(name))
    receiver.secrets[name] = seller["webhook_secret"]


async def _rows(dispatch: DispatchApi) -> list[tuple[str, Any, int]]:
    async with dispatch.runtime.session_factory() as session:
        return await _rows_in(session)


async def _rows_in(session: AsyncSession) -> list[tuple[str, Any, int]]:
    rows = await session.execute(
        select(WebhookDelivery.status, WebhookDelivery.next_attempt_at, WebhookDelivery.attempts)
    )
    return [(status, due, attempts) for status, due, attempts in rows]


class _Statements:
    def __init__(self, dispatch: DispatchApi) -> None:
        self.engine = dispatch.runtime.engine.sync_engine
        self.seen: list[str] = []

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self.seen

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        self.seen.append(str(args[2]))


async def test_a_message_claimed_at_birth_is_sent_by_its_sender_alone_without_a_claim(
    api: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await api.site()
    await _seller(api, receiver, "alice")
    handoff = api.handoff()
    async with httpx.AsyncClient() as client:
        sender = api.sender(client, handoff)
        assert await sender.send_due() == 0  # its first pass: nothing due
        await api.qualify(handoff)
        assert len(handoff) == 1
        lease_until = clock.now + timedelta(seconds=api.settings.webhook_lease_s)
        assert await _rows(api) == [("pending", lease_until, 0)]  # leased from birth
        assert await api.sender(client).send_due() == 0  # another sender: nothing to claim
        with _Statements(api) as statements:
            assert await sender.send_due() == 1
    assert not any(
        "UPDATE webhook_delivery SET next_attempt_at" in statement for statement in statements
    ), statements
    assert [message.event_type for message in receiver.of("alice")] == ["assignment.offered"]
    assert receiver.rejected == 0
    [(status, due, attempts)] = await _rows(api)
    assert (status, due, attempts) == ("delivered", None, 1)


async def test_a_rolled_back_unit_of_work_hands_nothing_over(
    api: DispatchApi, receiver: Receiver
) -> None:
    await api.site()
    await _seller(api, receiver, "bob")
    handoff = api.handoff()
    payload = await _payload(api)

    async def fails_after_queueing() -> None:
        async with session_scope(api.runtime.session_factory) as session:
            await on_qualified(api.step(session, handoff), payload)
            assert await _rows_in(session) != []  # the offer was queued, then:
            raise RuntimeError("the unit of work fails after queueing")

    with pytest.raises(RuntimeError):
        await fails_after_queueing()
    assert len(handoff) == 0
    assert await _rows(api) == []


async def test_a_message_of_a_sender_that_died_is_claimed_by_another_after_the_lease(
    api: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await api.site()
    await _seller(api, receiver, "carol")
    await api.qualify(api.handoff())  # its sender dies before taking it
    async with httpx.AsyncClient() as client:
        other = api.sender(client)
        assert await other.send_due() == 0  # still leased
        clock.advance(seconds=api.settings.webhook_lease_s)
        assert await other.send_due() == 1
        assert await other.send_due() == 0
    assert len(receiver.of("carol")) == 1
    assert [status for status, _, _ in await _rows(api)] == ["delivered"]


async def test_a_hand_over_whose_lease_ended_goes_by_the_claiming_pass(
    api: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await api.site()
    await _seller(api, receiver, "dan")
    handoff = api.handoff()
    await api.qualify(handoff)
    clock.advance(seconds=api.settings.webhook_lease_s)
    async with httpx.AsyncClient() as client:
        sender = api.sender(client, handoff)
        with _Statements(api) as statements:
            assert await sender.send_due() == 1  # claimed anew, not taken from the hand-over
        assert await sender.send_due() == 0
    assert any(
        "UPDATE webhook_delivery SET next_attempt_at" in statement for statement in statements
    ), statements
    assert len(handoff) == 0
    assert len(receiver.of("dan")) == 1


async def test_a_full_hand_over_queue_writes_messages_due_at_once(
    api: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await api.site()
    await _seller(api, receiver, "eve")
    handoff = api.handoff(capacity=1)
    await api.qualify(handoff)
    await api.qualify(handoff)  # the queue is full: due at once, for any sender
    assert len(handoff) == 1
    lease_until = clock.now + timedelta(seconds=api.settings.webhook_lease_s)
    assert sorted(due for _, due, _ in await _rows(api)) == [clock.now, lease_until]
    async with httpx.AsyncClient() as client:
        assert await api.sender(client).send_due() == 1  # the one due at once
        assert await api.sender(client, handoff).send_due() == 1  # the one handed over
    assert len(receiver.of("eve")) == 2


async def _payload(dispatch: DispatchApi) -> LeadQualifiedV1:
    return LeadQualifiedV1(
        lead_id=str(uuid.uuid4()),
        source="leboncoin",
        received_at=dispatch.clock.now - timedelta(minutes=30),
        qualified_at=dispatch.clock.now,
        operator_id="op-1",
        contact=ContactV1(full_name="Jeanne Martin", phone="+33612345678"),
        intent="buy",
        channel="in_store",
        site="lyon",
    )
