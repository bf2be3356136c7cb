"""The statements one new lead costs the worker (the ``lead.received.v1`` handler with its first
answer, then the sends of the sender that claimed it at birth), counted on the engine, with
their effects: the lead queued, one e-mail and one SMS sent, one ``lead.message-sent.v1`` each.
Each round trip is client CPU (asyncpg's encode, send, wake-up, decode and SQLAlchemy's per
statement bookkeeping): the worker's CPU per lead follows their number. On both backends."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event as sa_event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session

from qualify.leads.repository import new_queued_lead
from qualify.messages.channels import HandOver, Job
from qualify.messages.events import MessageRef, sent_row
from qualify.messages.handoff import SenderHandoff
from qualify.messages.repository import (
    _MESSAGE_COLUMNS,
    ClaimedWrites,
    MessageRepository,
    _column_values,
    new_outgoing,
)
from qualify.messages.sender import MessageSender
from qualify.models import OutgoingMessage, QueuedLead, infra
from shared.db.session import session_scope, wakeups_of
from shared.events.payloads import MessageChannel
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import outbox
from tests.support.clock import Clock

# One lead, two channels: the lead's row, which reads the configuration's version (the routing
# rules and templates come from the process's cache) and, on PostgreSQL, the lists (a
# data-modifying CTE; apart on SQLite), then both messages in one insert; then per message the
# hand-over and the outcome with its event (one statement on PostgreSQL, two on SQLite).
# Before: 5 + 2 * 2 on PostgreSQL, 5 + 2 * 3 on SQLite (the rules and the templates read for
# every lead, the lists apart); 12 on both before that.
STATEMENTS_PER_LEAD = {"sqlite": 3 + 2 * 3, "postgresql": 2 + 2 * 2}
# Transactions (a BEGIN and a COMMIT round trip each on PostgreSQL): the handler's; on
# PostgreSQL every write of the sender is one statement, run in autocommit. Before: 5 on both
# (the sender's hand-over and outcome in a transaction each).
TRANSACTIONS_PER_LEAD = {"sqlite": 1 + 2 * 2, "postgresql": 1}
# Statements executed through an ORM session's execute path: none on PostgreSQL, where the
# handler's two run as ``Prepared`` driver SQL on the session's connection (in its transaction)
# and the sender's writes (hand-over, outcome) likewise on a pooled connection without a
# session (``ClaimedWrites``: a session's set-up, execute path and close cost more client CPU
# than the statement). Before: 2 (the handler's through the session), and before that
# 2 + 2 * 2 (each of the sender's writes in a session of its own).
SESSION_STATEMENTS_PER_LEAD = {"sqlite": 3 + 2 * 3, "postgresql": 0}


class AcceptingChannel:
    """A way out that takes every message (the statements are the sender's, not SMTP's)."""

    verifiable = False

    def __init__(self, name: MessageChannel, *, configured: bool = True) -> None:
        self.name = name
        self.configured = configured

    async def send(self, job: Job, hand_over: HandOver) -> str | None:
        await hand_over()
        return f"provider-{job.message_id}"

    async def find_sent(self, job: Job) -> str | None:  # pragma: no cover - not verifiable
        return None


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[QualifyApi]:
    settings = qualify_settings(database_url, tmp_path, message_dealer_name="Garage Dupont")
    async with open_api(settings, Clock()) as api:
        yield api


@pytest.fixture
async def pg_api(postgres_url: str, tmp_path: Path) -> AsyncIterator[QualifyApi]:
    """On PostgreSQL only: what the sender's claimed writes do there (sessions on SQLite)."""
    settings = qualify_settings(postgres_url, tmp_path, message_dealer_name="Garage Dupont")
    async with open_api(settings, Clock()) as api:
        yield api


def running_sender(api: QualifyApi, *, sms: bool = True) -> tuple[MessageSender, SenderHandoff]:
    """The worker's sender, taking the first answers its handoff gives it."""
    sender = MessageSender(
        api.runtime.session_factory,
        api.runtime.settings,
        {"email": AcceptingChannel("email"), "sms": AcceptingChannel("sms", configured=sms)},
        outbox=api.runtime.outbox,
        clock=api.clock,
    )
    handoff = SenderHandoff()
    handoff.attach(sender)
    return sender, handoff


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0
    in_sessions: int = 0


@contextmanager
def counted(api: QualifyApi) -> Iterator[Counted]:
    """The statements sent on the engine, and the transactions begun (not the units of work
    of an autocommit connection: the driver sends no BEGIN for them)."""
    seen = Counted()

    def record(*args: Any) -> None:
        seen.statements.append(args[2])

    def begun(connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            seen.transactions += 1

    def in_session(_: ORMExecuteState) -> None:
        seen.in_sessions += 1

    engine = api.runtime.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", record)
    sa_event.listen(engine, "begin", begun)
    sa_event.listen(Session, "do_orm_execute", in_session)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
        sa_event.remove(engine, "begin", begun)
        sa_event.remove(Session, "do_orm_execute", in_session)


async def test_a_new_lead_costs_the_worker_a_fixed_few_statements(api: QualifyApi) -> None:
    sender, handoff = running_sender(api)
    await api.add_lead(first_answer=True, handoff=handoff)  # the first builds the caches
    await sender.drain()

    relay = wakeups_of(api.runtime.session_factory).signal(infra.outbox_event.name)
    woken = relay.generation
    with counted(api) as seen:
        lead = await api.add_lead(first_answer=True, handoff=handoff)
        await sender.drain()
        staged = relay.generation - woken

    dialect = api.runtime.engine.dialect.name
    assert len(seen.statements) == STATEMENTS_PER_LEAD[dialect], "\n".join(seen.statements)
    assert seen.transactions == TRANSACTIONS_PER_LEAD[dialect]
    assert seen.in_sessions == SESSION_STATEMENTS_PER_LEAD[dialect]
    async with session_scope(api.runtime.session_factory) as session:
        assert await session.get(QueuedLead, lead) is not None
        rows = (
            await session.scalars(select(OutgoingMessage).where(OutgoingMessage.lead_id == lead))
        ).all()
    assert sorted(row.channel for row in rows) == ["email", "sms"]
    assert {row.status for row in rows} == {"sent"}
    assert all(row.provider_message_id == f"provider-{row.id}" for row in rows)
    assert all(row.handed_over_at is not None and row.sent_at == api.clock.now for row in rows)
    sent = [data for kind, data in await outbox(api, lead) if kind == "lead.message-sent.v1"]
    assert sorted((data["channel"], data["message_id"]) for data in sent) == sorted(
        (row.channel, row.id) for row in rows
    )
    assert all(data["kind"] == "first_answer" for data in sent)
    # This process's relay was woken for the events (in autocommit as in a transaction).
    assert staged >= 2


async def test_an_outcome_whose_claim_was_taken_over_stages_nothing(api: QualifyApi) -> None:
    lead = await api.add_lead(first_answer=True)  # queued, not claimed: no claim token holds
    async with session_scope(api.runtime.session_factory) as session:
        repository = MessageRepository.from_session(session)
        message = (await repository.outgoing_of(lead))[0]
        done = await repository.update_claimed_staging(
            message.id,
            "a-token-taken-over",
            outbox=infra.outbox_event,
            event=sent_row(api.runtime.outbox, MessageRef.of(message), sent_at=api.clock.now),
            status="sent",
        )
    assert done is False
    assert [kind for kind, _ in await outbox(api, lead) if kind == "lead.message-sent.v1"] == []
    async with session_scope(api.runtime.session_factory) as session:
        assert {row.status for row in await MessageRepository(session).outgoing_of(lead)} == {
            "queued"
        }


async def test_the_senders_writes_are_fenced_by_the_claim_token(api: QualifyApi) -> None:
    """``ClaimedWrites`` (the sender's writes, outside an ORM session on PostgreSQL): a write
    under a token that no longer holds the message changes nothing, stages nothing and wakes
    nobody; under the holding token it changes the row, stages the event and wakes the relay."""
    sender, handoff = running_sender(api, sms=False)
    lead = await api.add_lead(first_answer=True, handoff=handoff)
    await sender.drain()
    async with session_scope(api.runtime.session_factory) as session:
        sms = next(
            m for m in await MessageRepository(session).outgoing_of(lead) if m.channel == "sms"
        )
    writes = ClaimedWrites(api.runtime.session_factory)
    relay = wakeups_of(api.runtime.session_factory).signal(infra.outbox_event.name)
    woken = relay.generation
    event = sent_row(api.runtime.outbox, MessageRef.of(sms), sent_at=api.clock.now)
    assert not await writes.update(sms.id, "not-the-token", last_error="x")
    assert not await writes.update_staging(
        sms.id, "not-the-token", outbox=infra.outbox_event, event=event, status="sent"
    )
    assert relay.generation == woken
    async with session_scope(api.runtime.session_factory) as session:
        row = await MessageRepository(session).get(sms.id)
        assert row is not None
        row.status, row.claim_token = "sending", "held"
    assert await writes.update(sms.id, "held", handed_over_at=api.clock.now)
    assert await writes.update_staging(
        sms.id, "held", outbox=infra.outbox_event, event=event, status="sent", sent_at=api.clock.now
    )
    assert relay.generation > woken
    async with session_scope(api.runtime.session_factory) as session:
        row = await MessageRepository(session).get(sms.id)
        assert row is not None
        assert row.status == "sent"
        assert row.handed_over_at is not None
    sent = [data for kind, data in await outbox(api, lead) if kind == "lead.message-sent.v1"]
    assert sorted(data["channel"] for data in sent) == ["email", "sms"]


@contextmanager
def greenlets_entered() -> Iterator[list[Any]]:
    """The greenlets switched into (each hop into SQLAlchemy's greenlet is a new one)."""
    greenlet: Any = importlib.import_module("greenlet")  # untyped
    entered: list[Any] = []

    def trace(event: str, args: tuple[Any, Any]) -> None:
        _, target = args
        if event == "switch" and target.parent is not None and target not in entered:
            entered.append(target)

    previous = greenlet.settrace(trace)
    try:
        yield entered
    finally:
        greenlet.settrace(previous)


@pytest.mark.postgres
async def test_each_of_the_senders_writes_is_one_hop_into_sqlalchemy(pg_api: QualifyApi) -> None:
    """On PostgreSQL a claimed write (the hand-over, the outcome with its event) takes its
    pooled connection, runs its statement in autocommit and gives the connection back in one
    hop into SQLAlchemy's greenlet. Before: four (``AsyncConnection``'s connect, its isolation
    level, the statement and its close), ~40 us of CPU each."""
    sender, handoff = running_sender(pg_api, sms=False)
    lead = await pg_api.add_lead(first_answer=True, handoff=handoff)
    await sender.drain()
    async with session_scope(pg_api.runtime.session_factory) as session:
        sms = next(
            m for m in await MessageRepository(session).outgoing_of(lead) if m.channel == "sms"
        )
        sms.status, sms.claim_token = "sending", "held"
    writes = ClaimedWrites(pg_api.runtime.session_factory)
    event = sent_row(pg_api.runtime.outbox, MessageRef.of(sms), sent_at=pg_api.clock.now)
    with greenlets_entered() as entered:
        assert await writes.update(sms.id, "held", handed_over_at=pg_api.clock.now)
    assert len(entered) == 1
    with greenlets_entered() as entered:
        assert await writes.update_staging(
            sms.id, "held", outbox=infra.outbox_event, event=event, status="sent"
        )
    assert len(entered) == 1
    async with session_scope(pg_api.runtime.session_factory) as session:
        row = await MessageRepository(session).get(sms.id)
        assert row is not None
        assert (row.status, row.handed_over_at) == ("sent", pg_api.clock.now)


@pytest.mark.postgres
async def test_held_claimed_writes_keep_their_connection_between_messages(
    pg_api: QualifyApi,
) -> None:
    """With ``hold`` (the worker's sender), the claimed writes take no connection from the pool
    once one is held: it waits in autocommit between writes; it goes back to the pool after an
    error and at ``close``. Without, each write checks one out (before: always)."""
    lead = await pg_api.add_lead(first_answer=True)
    async with session_scope(pg_api.runtime.session_factory) as session:
        message = (await MessageRepository(session).outgoing_of(lead))[0]
        message.status, message.claim_token = "sending", "held"
    checkouts: list[object] = []

    def checked_out(*args: Any) -> None:
        checkouts.append(args[0])

    pool = pg_api.runtime.engine.sync_engine.pool
    sa_event.listen(pool, "checkout", checked_out)
    try:
        writes = ClaimedWrites(pg_api.runtime.session_factory, hold=True)
        for _ in range(5):
            assert await writes.update(message.id, "held", last_error="x")
        assert len(checkouts) == 1
        assert writes.held == 1
        with pytest.raises(DBAPIError):  # a failed write gives its connection back
            await writes.update(message.id, "held", attempts="not a number")
        assert writes.held == 0
        assert await writes.update(message.id, "held", handed_over_at=pg_api.clock.now)
        assert len(checkouts) == 2
        await writes.close()
        assert writes.held == 0
        pooled = ClaimedWrites(pg_api.runtime.session_factory)
        for _ in range(3):
            assert await pooled.update(message.id, "held", last_error="y")
        assert len(checkouts) == 5
    finally:
        sa_event.remove(pool, "checkout", checked_out)
    async with session_scope(pg_api.runtime.session_factory) as session:
        row = await MessageRepository(session).get(message.id)
        assert row is not None
        assert (row.last_error, row.handed_over_at) == ("y", pg_api.clock.now)


async def test_a_new_lead_and_its_messages_are_built_without_attribute_events(
    api: QualifyApi,
) -> None:
    """The handler's lead and the first answer's messages have their values put in their state
    (``new_queued_lead``, ``new_outgoing``), not set attribute by attribute through the ORM's
    events (~16 us per object); the rows are what the values say, on both backends. Before:
    an event per attribute (here, one on each watched column per object)."""
    sets: list[str] = []
    watched = [QueuedLead.email, QueuedLead.due_at, OutgoingMessage.text, OutgoingMessage.kind]

    def seen(target: Any, value: Any, *_: Any) -> None:
        sets.append(type(target).__name__)

    for attribute in watched:
        sa_event.listen(attribute, "set", seen)
    try:
        lead = await api.add_lead(first_answer=True)
    finally:
        for attribute in watched:
            sa_event.remove(attribute, "set", seen)
    assert sets == []
    async with session_scope(api.runtime.session_factory) as session:
        queued = await session.get(QueuedLead, lead)
        assert queued is not None
        assert (queued.email, queued.status, queued.unread_replies) == (
            "camille@example.fr",
            "waiting",
            0,
        )
        rows = (
            await session.scalars(select(OutgoingMessage).where(OutgoingMessage.lead_id == lead))
        ).all()
    assert sorted((row.channel, row.kind, row.status) for row in rows) == [
        ("email", "first_answer", "queued"),
        ("sms", "first_answer", "queued"),
    ]
    assert all(row.text and row.attempts == 0 for row in rows)


def test_only_columns_build_a_new_lead_or_message() -> None:
    with pytest.raises(TypeError, match="nope"):
        new_queued_lead(lead_id="x", nope=1)
    with pytest.raises(TypeError, match="nope"):
        new_outgoing(id="x", nope=1)
    message = new_outgoing(id="x", lead_id="l", kind="first_answer", channel="email", attempts=0)
    message.status, message.attempts = "sending", message.attempts + 1
    # What the multi-row insert writes of a new message: its attributes, unset ones None.
    assert _column_values(message) == [getattr(message, key) for key in _MESSAGE_COLUMNS]


async def test_a_first_answer_this_sender_cannot_send_does_not_wake_it(api: QualifyApi) -> None:
    """Without SMS here, the SMS of a first answer stays queued (for a process that can send
    it, or until SMS is configured); this process's sender, which claimed the e-mail at birth,
    is not woken for it: its pass would find nothing (``has_work`` reads only the channels it
    can send). Before, every such lead cost that probe."""
    sender, handoff = running_sender(api, sms=False)
    wakeup = wakeups_of(api.runtime.session_factory).signal(OutgoingMessage.__tablename__)
    seen = wakeup.generation
    lead = await api.add_lead(first_answer=True, handoff=handoff)
    await sender.drain()
    assert wakeup.generation == seen
    async with session_scope(api.runtime.session_factory) as session:
        rows = (
            await session.scalars(select(OutgoingMessage).where(OutgoingMessage.lead_id == lead))
        ).all()
    assert sorted((row.channel, row.status) for row in rows) == [
        ("email", "sent"),
        ("sms", "queued"),
    ]
    # Without a sender here (the API), a queued first answer still wakes this process's loops.
    lead = await api.add_lead(first_answer=True)
    assert wakeup.generation == seen + 1
