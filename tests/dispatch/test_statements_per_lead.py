"""What the dispatch worker sends the database per qualified lead, counted by statement: the
intake and its offer (one probe that reads the vehicle and the contact schedule too, the pool,
the writes), then the sender's pass that records the delivered offer, and the timer loop's reads
(none for the timers its own process wrote). On PostgreSQL the offer's writes and its event are
one statement (CTEs) and a delivered pass is one; SQLite (no network) keeps a statement per
table. A consumed batch reads its pool once while the order read still holds (the sellers'
loads move in memory as its leads are offered). The effects are checked alongside: the lead,
its contact hashes, the offer, the seller's load, the accept deadline, the message delivered
and logged, the event staged, and the pause the pass read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, event, select, update

from dispatch.assignments.intake import qualified_handler
from dispatch.models import (
    Assignment,
    DispatchLead,
    LeadContactKey,
    Seller,
    WebhookAttempt,
    WebhookDelivery,
)
from dispatch.timers.hint import due_hint
from dispatch.timers.runner import OTHERS_READ_AFTER_S, TimerLoop
from shared.db.session import session_scope, wakeups_of
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadQualifiedV1
from tests.dispatch.conftest import DispatchApi, Receiver, dispatch_settings, start_dispatch
from tests.support.clock import Clock
from tests.support.executed import executed

# (intake of a lead offered to a seller, the sender's pass that records its delivery): the
# intake's probe reads the vehicle's stock row and the contact schedule with the rest, and on
# PostgreSQL the first page of its site's pool (main read the pool apart: 3 statements).
STATEMENTS = {"sqlite": (9, 4), "postgresql": (2, 1)}
# A lead with a vehicle goes to the vehicle's site: the probe reads that site's pool on
# PostgreSQL too (main read it apart: one statement more).
VEHICLE_POOL_READ = {"sqlite": 0, "postgresql": 0}
# Transactions of the sender's pass (a BEGIN and a COMMIT round trip each on PostgreSQL): its one
# statement runs in autocommit there.
PASS_TRANSACTIONS = {"sqlite": 1, "postgresql": 0}


@pytest.fixture
def api(dispatch_on_either: DispatchApi) -> DispatchApi:
    return dispatch_on_either


@contextmanager
def transactions(dispatch: DispatchApi) -> Iterator[list[None]]:
    """The transactions begun (not the units of work of an autocommit connection: the driver
    sends no BEGIN for them)."""
    engine = dispatch.runtime.engine.sync_engine
    begun: list[None] = []

    def count(connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            begun.append(None)

    event.listen(engine, "begin", count)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", count)


@pytest.mark.parametrize("vehicle", [None, "AD-7"])
async def test_a_qualified_lead_offered_and_delivered_in_few_statements(
    api: DispatchApi, receiver: Receiver, clock: Clock, vehicle: str | None
) -> None:
    dialect = api.runtime.engine.dialect.name
    intake_statements, pass_statements = STATEMENTS[dialect]
    if vehicle is not None:
        intake_statements += VEHICLE_POOL_READ[dialect]
    await api.site()
    await api.admin.post("/v1/schedules", json={"site_id": "lyon", "accept_within_minutes": 7})
    if vehicle is not None:  # in stock at the lead's site
        response = await api.admin.put(f"/v1/vehicles/{vehicle}", json={"site_id": "lyon"})
        assert response.status_code == 200
    seller = await api.seller("alice", webhook_url=receiver.url("alice"))
    receiver.secrets["alice"] = seller["webhook_secret"]
    handoff = api.handoff()
    async with httpx.AsyncClient() as client:
        sender = api.sender(client, handoff)
        assert await sender.send_due() == 0  # nothing due: the pass knows when to look again
        offered_at = clock.now
        with executed(api.runtime.engine) as intake:
            lead_id = await api.qualify(handoff, vehicle_ad_ref=vehicle)
        assert len(intake) == intake_statements, intake
        # Another worker's offer, leased to its own sender a second later: the pass's pause.
        clock.advance(seconds=1)
        other_id = await api.qualify(api.handoff())
        with executed(api.runtime.engine) as sent, transactions(api) as begun:
            assert await sender.send_due() == 1
            lease_s = api.settings.webhook_lease_s
            assert await sender.pause(3600) == lease_s  # read with the pass's record
        assert len(sent) == pass_statements, sent
        assert len(begun) == PASS_TRANSACTIONS[api.runtime.engine.dialect.name]

    async with api.runtime.session_factory() as session:
        lead = await session.get(DispatchLead, lead_id)
        assert lead is not None
        assert (lead.status, lead.routed_to, lead.updated_at) == ("offered", "in_store", offered_at)
        keys = (
            await session.scalars(
                select(LeadContactKey.contact_hash).where(LeadContactKey.lead_id == lead_id)
            )
        ).all()
        assert len(keys) == 1  # the phone's hash
        offers = (
            await session.scalars(select(Assignment).where(Assignment.lead_id == lead_id))
        ).all()
        assert [(a.seller_id, a.status, a.is_open) for a in offers] == [
            (seller["id"], "offered", True)
        ]
        message = (
            await session.scalars(select(WebhookDelivery).where(WebhookDelivery.lead_id == lead_id))
        ).one()
        assert (message.status, message.attempts, message.next_attempt_at) == ("delivered", 1, None)
        attempts = (
            await session.scalars(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id == message.id)
            )
        ).all()
        assert [(a.attempt, a.status_code, a.outcome) for a in attempts] == [(1, 204, "delivered")]
    assert await api.pending_timers(lead_id) == [
        ("accept_deadline", offers[0].id, offers[0].accept_due_at)
    ]
    assert offers[0].accept_due_at == offered_at + timedelta(minutes=7)  # the site's schedule
    state = (await api.admin.get(f"/v1/sellers/{seller['id']}")).json()
    assert state["open_count"] == 2  # the two leads' offers
    assert state["webhook_failures"] == 0
    events = await api.events("assignment.offered.v1")
    assert [e["data"]["lead_id"] for e in events] == [lead_id, other_id]
    assert [(r.event_type, r.payload["data"]["lead"]["lead_id"]) for r in receiver.of("alice")] == [
        ("assignment.offered", lead_id)
    ]


async def test_the_timer_loop_reads_nothing_for_the_timers_its_process_wrote(
    dispatch_database_url: str, tmp_path: Path, clock: Clock
) -> None:
    settings = dispatch_settings(
        dispatch_database_url, embedded_bus_path=tmp_path / "bus.db", timer_poll_interval_s=3600
    )
    async with start_dispatch(settings, clock) as api:
        await api.site()
        await api.seller("alice")
        hint = due_hint(wakeups_of(api.runtime.session_factory))
        monotonic = [0.0]  # the real time the loop's pauses last, moved by hand
        loop = TimerLoop(api.timers, hint, settings, clock, monotonic=lambda: monotonic[0])
        with executed(api.runtime.engine) as started:
            assert await loop.step() == pytest.approx(
                3600, abs=1
            )  # nothing pending: the fallback poll
        assert len(started) == 1
        woken = hint.signal.generation
        lead_id = await api.qualify()  # its accept deadline, in ten minutes, wakes the loop
        assert hint.signal.generation == woken + 1
        with executed(api.runtime.engine) as after_lead:
            assert await loop.step() == pytest.approx(600, abs=1)
        assert after_lead == []
        clock.advance(minutes=1)
        await api.qualify()  # due after the first one's: the sleeping loop is not woken
        assert hint.signal.generation == woken + 1
        with executed(api.runtime.engine) as after_second:
            assert await loop.step() == pytest.approx(540, abs=1)
        assert after_second == []
        hint.signal.notify()  # another process wrote timers (shared.db.wakeup)
        with executed(api.runtime.engine) as after_others:
            assert await loop.step() <= OTHERS_READ_AFTER_S  # read within a second, not now
            hint.signal.notify()  # more of theirs: the same read
            assert await loop.step() <= OTHERS_READ_AFTER_S
            assert after_others == []
            monotonic[0] += OTHERS_READ_AFTER_S
            assert await loop.step() == pytest.approx(540, abs=1)
        assert len(after_others) == 1
        clock.advance(minutes=9)
        assert await loop.step() == pytest.approx(60, abs=1)  # the second deadline next
        # The first deadline fired (the offer expired, the lead waits for a reroute).
        assert [kind for kind, _, _ in await api.pending_timers(lead_id)] == ["reroute"]


def _envelope(api: DispatchApi, **values: Any) -> Envelope:
    """A ``lead.qualified.v1`` event as the leads consumer reads it."""
    lead_id = str(uuid.uuid4())
    payload = LeadQualifiedV1(
        lead_id=lead_id,
        source="leboncoin",
        received_at=api.clock.now - timedelta(minutes=30),
        qualified_at=api.clock.now,
        operator_id="op-1",
        contact=ContactV1(full_name="Jeanne Martin", phone=f"+3361{uuid.uuid4().int % 10**7:07d}"),
        intent="buy",
        channel="in_store",
        site="lyon",
        **values,
    )
    return Envelope(
        source="/vo-leads/qualify",
        type="lead.qualified.v1",
        subject=lead_id,
        data=payload.model_dump(mode="json"),
    )


async def _consume(api: DispatchApi, envelopes: list[Envelope]) -> None:
    """The leads consumer's batch: its handler on each event, in one unit of work."""
    handler = qualified_handler(api.runtime, api.handoff())
    async with session_scope(api.runtime.session_factory) as session:
        for envelope in envelopes:
            await handler(session, envelope)


async def _offered_to(api: DispatchApi, envelopes: list[Envelope]) -> list[str | None]:
    """The seller each event's lead was offered to (None: escalated), in the batch's order."""
    offered: list[str | None] = []
    async with api.runtime.session_factory() as session:
        for envelope in envelopes:
            seller_ids = (
                await session.scalars(
                    select(Assignment.seller_id).where(Assignment.lead_id == envelope.subject)
                )
            ).all()
            assert len(seller_ids) <= 1
            offered.append(seller_ids[0] if seller_ids else None)
    return offered


# A consumed batch of five leads of one pool: the pool is read once (on PostgreSQL with the
# first lead's probe), then each lead costs its probe and its writes (main: 11 on PostgreSQL).
BATCH_STATEMENTS = {"sqlite": 41, "postgresql": 10}


async def test_a_consumed_batch_reads_its_pool_once(api: DispatchApi) -> None:
    await api.site()
    sellers = sorted([(await api.seller(name))["id"] for name in ("alice", "bob", "carol")])
    envelopes = [_envelope(api) for _ in range(5)]
    with executed(api.runtime.engine) as seen:
        await _consume(api, envelopes)
    assert len(seen) == BATCH_STATEMENTS[api.runtime.engine.dialect.name], seen
    # Least loaded first, ties to the least recently offered, then by id: the in-memory loads
    # of the batch give the choices the database would.
    assert await _offered_to(api, envelopes) == [*sellers, *sellers[:2]]
    events = await api.events("assignment.offered.v1")
    assert [e["data"]["lead_id"] for e in events] == [e.subject for e in envelopes]


async def test_a_batch_larger_than_a_pool_page_keeps_the_least_loaded_choice(
    api: DispatchApi, clock: Clock
) -> None:
    """More sellers than a page holds, each able to take one lead: every lead goes to a seller
    with nothing yet (the batch reads the pool again once the page's order is uncertain), the
    one too many is escalated, nobody exceeds their capacity."""
    await api.site()
    sellers = [(await api.seller(f"s{index}", capacity=1))["id"] for index in range(18)]
    # Two of them were offered a lead before (its offer since declined): they come last.
    async with api.runtime.session_factory() as session:
        for minutes, seller_id in enumerate(sellers[:2]):
            await session.execute(
                update(Seller)
                .where(Seller.id == seller_id)
                .values(last_offered_at=clock.now - timedelta(minutes=10 - minutes))
            )
        await session.commit()
    envelopes = []
    for _ in range(19):
        clock.advance(seconds=1)
        envelopes.append(_envelope(api))
    await _consume(api, envelopes)
    expected = [*sorted(sellers[2:]), *sellers[:2], None]
    assert await _offered_to(api, envelopes) == expected
    async with api.runtime.session_factory() as session:
        loads = (await session.scalars(select(Seller.open_count))).all()
    assert sorted(loads) == [1] * 18
