"""What crm's worker sends to the database per lead: the statements its handlers of a lead's
events (the client and its timeline, the SLA fact) send, counted one per round trip, on SQLite
and PostgreSQL, with the rows they write. Each statement costs client CPU (encode, send, wake-up,
decode) and the ORM's per-statement overhead, whatever its SQL: the count is what is pinned."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as sa_event, select

from crm.models import Client, TimelineEntry, infra
from crm.settings import CrmSettings
from crm.sla.consumer import sla_handlers
from crm.sla.models import sla_fact
from crm.worker import client_handlers
from shared.consumer import Handler, merge_handlers
from shared.db.session import session_scope
from shared.events import Envelope
from shared.metrics import ServiceMetrics
from shared.runtime import Runtime
from tests.crm.conftest import CrmFactory
from tests.support.harness import migrate

SITE = "site-lyon"


@asynccontextmanager
async def worker_runtime(crm: CrmFactory) -> AsyncIterator[Runtime[CrmSettings]]:
    settings = crm.settings()
    await migrate(settings)
    runtime = await Runtime.open(settings, infra, ServiceMetrics("crm"), role="worker")
    try:
        yield runtime
    finally:
        await runtime.close()


@contextmanager
def statements(runtime: Runtime[CrmSettings]) -> Iterator[list[str]]:
    """The SQL statements sent to the database meanwhile (one per round trip)."""
    sent: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    engine = runtime.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


def _event(event_type: str, subject: str, at: datetime, **data: Any) -> Envelope:
    payload = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in data.items()
    }
    return Envelope(source="/tests", type=event_type, subject=subject, time=at, data=payload)


def calendar(at: datetime) -> Envelope:
    return _event(
        "site.calendar-changed.v1",
        SITE,
        at,
        calendar_id=SITE,
        site_id=SITE,
        pool="in_store",
        timezone="Europe/Paris",
        opening_hours="mon-sat 09:00-19:00",
        change="created",
        changed_at=at,
    )


INES = {"first_name": "Inès", "full_name": "Inès Marchand", "phone": "+33698765432"}


def received(lead_id: str, at: datetime, contact: dict[str, str] = INES) -> Envelope:
    return _event(
        "lead.received.v1",
        lead_id,
        at,
        lead_id=lead_id,
        kind="enquiry",
        source="api",
        source_ref=lead_id,
        received_at=at,
        contact=contact,
        vehicle={},
    )


def life(lead_id: str, start: datetime) -> list[Envelope]:
    """A lead's usual events after its receipt, a few minutes apart."""
    at = [start + timedelta(minutes=minutes) for minutes in range(1, 20)]
    seller = {"lead_id": lead_id, "assignment_id": "as-1", "seller_id": "seller-1"}
    return [
        _event(
            "lead.message-sent.v1",
            lead_id,
            at[0],
            lead_id=lead_id,
            message_id="m-1",
            channel="email",
            kind="first_answer",
            created_at=at[0],
            sent_at=at[0],
        ),
        _event(
            "lead.contact-attempted.v1",
            lead_id,
            at[1],
            lead_id=lead_id,
            attempt_id="a-1",
            operator_id="op-7",
            channel="phone",
            outcome="reached",
            attempted_at=at[1],
        ),
        _event(
            "lead.qualified.v1",
            lead_id,
            at[2],
            lead_id=lead_id,
            source="api",
            received_at=start,
            qualified_at=at[2],
            operator_id="op-7",
            contact={"full_name": "Inès Marchand", "phone": "+33698765432"},
            intent="buy",
            channel="in_store",
            site=SITE,
        ),
        _event(
            "assignment.offered.v1",
            lead_id,
            at[3],
            **seller,
            site_id=SITE,
            offered_at=at[3],
            accept_due_at=at[5],
            strategy="round_robin",
        ),
        _event(
            "assignment.accepted.v1",
            lead_id,
            at[4],
            **seller,
            accepted_at=at[4],
            first_contact_due_at=at[9],
        ),
        _event("lead.assigned.v1", lead_id, at[4], **seller, site_id=SITE, assigned_at=at[4]),
        _event("lead.contacted.v1", lead_id, at[6], **seller, channel="phone", contacted_at=at[6]),
        _event(
            "lead.appointment-set.v1",
            lead_id,
            at[7],
            **seller,
            site_id=SITE,
            appointment_at=at[18],
            set_at=at[7],
        ),
        _event("lead.won.v2", lead_id, at[8], **seller, site_id=SITE, won_at=at[8]),
    ]


async def handle(
    runtime: Runtime[CrmSettings], handlers: dict[str, Handler], envelope: Envelope
) -> int:
    """Run the event's handlers in one transaction, as the consumer does; statements sent."""
    with statements(runtime) as sent:
        async with session_scope(runtime.session_factory) as session:
            await handlers[envelope.type](session, envelope)
    # The transaction's own BEGIN / COMMIT are the consumer's, not the handlers'.
    return len([statement for statement in sent if statement.strip() not in ("BEGIN", "COMMIT")])


async def written(runtime: Runtime[CrmSettings], lead_id: str) -> dict[str, Any]:
    async with session_scope(runtime.session_factory) as session:
        entries = (
            await session.execute(
                select(TimelineEntry.kind, TimelineEntry.details, TimelineEntry.client_id)
                .where(TimelineEntry.lead_id == lead_id)
                .order_by(TimelineEntry.occurred_at, TimelineEntry.kind)
            )
        ).all()
        clients = (await session.scalars(select(Client))).all()
        fact = (
            (await session.execute(select(sla_fact).where(sla_fact.c.lead_id == lead_id)))
            .mappings()
            .one()
        )
    return {
        "entries": [(kind, details) for kind, details, _ in entries],
        # Every entry of the lead is on its one client's timeline.
        "on_client_timeline": {owner for _, _, owner in entries} == {c.id for c in clients},
        "clients": [(client.full_name, client.phone, client.last_contact_at) for client in clients],
        "fact": dict(fact),
    }


# Statements per event of a lead's usual life (clients and timeline, then the SLA fact).
EXPECTED = {
    # seen-and-match, client, entry; the fact inserted unless it exists (no read first)
    "lead.received.v1": 4,
    # the entry, its client found in the same statement (then the SLA: no fact event)
    "lead.message-sent.v1": 1,
    # entry; the client's last contact (reached); the fact read with its calendar, updated
    "lead.contact-attempted.v1": 4,
    "lead.qualified.v1": 3,
    "assignment.offered.v1": 3,
    "assignment.accepted.v1": 3,
    "lead.assigned.v1": 2,  # the fact changes nothing: no UPDATE
    "lead.contacted.v1": 3,
    "lead.appointment-set.v1": 4,  # + the client's last contact
    "lead.won.v2": 5,  # + the other version's entry looked up
}
# PostgreSQL: a new client and its first entry, and an entry with the client's last contact,
# are one statement each (data-modifying CTEs; SQLite has none).
ON_POSTGRES = {
    "lead.received.v1": -1,
    "lead.contact-attempted.v1": -1,
    "lead.appointment-set.v1": -1,
    "lead.won.v2": -1,
}


def expected(runtime: Runtime[CrmSettings]) -> dict[str, int]:
    if runtime.engine.dialect.name != "postgresql":
        return EXPECTED
    return {
        event_type: count + ON_POSTGRES.get(event_type, 0) for event_type, count in EXPECTED.items()
    }


async def test_statements_per_lead_through_the_handlers(crm: CrmFactory) -> None:
    async with worker_runtime(crm) as runtime:
        handlers = merge_handlers(client_handlers(runtime), sla_handlers(runtime))
        start = runtime.clock().replace(microsecond=0) - timedelta(hours=2)
        await handle(runtime, handlers, calendar(start - timedelta(days=1)))
        lead_id = str(uuid.uuid4())
        events = [received(lead_id, start), *life(lead_id, start)]
        counts = {event.type: await handle(runtime, handlers, event) for event in events}
        assert counts == expected(runtime)
        # 42 before the cuts (both databases)
        assert sum(counts.values()) == (28 if runtime.engine.dialect.name == "postgresql" else 32)
        state = await written(runtime, lead_id)
        assert [kind for kind, _ in state["entries"]] == [
            "lead.received",
            "lead.message-sent",
            "lead.contact-attempted",
            "lead.qualified",
            "assignment.offered",
            "assignment.accepted",
            "lead.assigned",
            "lead.contacted",
            "lead.appointment-set",
            "lead.won",
        ]
        assert state["entries"][2][1] == {
            "attempt_id": "a-1",
            "operator_id": "op-7",
            "channel": "phone",
            "outcome": "reached",
        }
        last_contact = start + timedelta(minutes=9)  # the sale: the prospect's own contact
        assert state["clients"] == [("Inès Marchand", "+33698765432", last_contact)]
        fact = state["fact"]
        assert (fact["received_at"], fact["won_at"]) == (start, last_contact)
        assert (fact["source"], fact["site"], fact["seller_id"]) == ("api", SITE, "seller-1")
        assert (fact["outcome"], fact["closed_at"]) == ("won", last_contact)
        assert fact["path"] == "qualify"
        assert state["on_client_timeline"]
        assert fact["calendar_provisional"] is False
        assert fact["qualified_wall_s"] == 3 * 60
        assert fact["won_wall_s"] is not None

        # Each event again (a replay): nothing written, nothing changed.
        replayed = [await handle(runtime, handlers, event) for event in events]
        assert await written(runtime, lead_id) == state
        # (a replay is rare: the consumer claims each event once; these are its costs: no second
        # statement to tell why a step's entry was not inserted; on SQLite a prospect's own
        # contact touches its client again, which changes nothing)
        on_postgres = runtime.engine.dialect.name == "postgresql"
        assert replayed == (
            [3, 1, 2, 2, 2, 2, 2, 2, 2, 2] if on_postgres else [3, 1, 3, 2, 2, 2, 2, 2, 3, 2]
        )

        # A second lead of the same person: matched by phone, its last contact moved.
        second = str(uuid.uuid4())
        later = start + timedelta(hours=1)
        assert await handle(runtime, handlers, received(second, later)) == 4
        assert (await written(runtime, second))["clients"][0][2] == later


async def handle_batch(
    runtime: Runtime[CrmSettings], handlers: dict[str, Handler], envelopes: list[Envelope]
) -> list[str]:
    """Run the events' handlers in one transaction, as the patient consumer does with a polled
    batch; the statements sent (without BEGIN / COMMIT)."""
    with statements(runtime) as sent:
        async with session_scope(runtime.session_factory) as session:
            for envelope in envelopes:
                await handlers[envelope.type](session, envelope)
    return [statement for statement in sent if statement.strip() not in ("BEGIN", "COMMIT")]


def _fact_statements(sent: list[str]) -> list[str]:
    return [statement for statement in sent if "sla_fact" in statement]


async def test_a_batch_writes_a_lead_once(crm: CrmFactory) -> None:
    """A lead's events in one batch (one transaction), as crm.leads handles a polled batch: its
    SLA fact is inserted by the receipt, the later events merge into it in memory and it is
    updated once, at the commit; the later steps' timeline entries are inserted together, in
    one statement of many parameter sets, and the prospect's own contacts likewise. The rows
    are those the events give one transaction each; a replay of the batch changes nothing."""
    async with worker_runtime(crm) as runtime:
        handlers = merge_handlers(client_handlers(runtime), sla_handlers(runtime))
        start = runtime.clock().replace(microsecond=0) - timedelta(hours=2)
        await handle(runtime, handlers, calendar(start - timedelta(days=1)))
        batched, one_by_one = str(uuid.uuid4()), str(uuid.uuid4())
        events = [received(batched, start), *life(batched, start)]
        sent = await handle_batch(runtime, handlers, events)
        # the receipt's INSERT, the site's calendar once, one UPDATE (was: 1 + 2 per later event)
        fact = _fact_statements(sent)
        assert [statement.split()[0] for statement in fact] == ["INSERT", "UPDATE"]
        entries = [s for s in sent if "INSERT INTO timeline_entry" in s]
        assert len(entries) == 2  # the receipt's (own statement on SQLite), then the 9 others
        # seen-and-match, client and entry (one on PostgreSQL), the fact, the calendar, the other
        # sale's entry looked up, the 9 entries, the 3 own contacts, the fact (was 28 / 32)
        assert len(sent) == (8 if runtime.engine.dialect.name == "postgresql" else 9)
        state = await written(runtime, batched)
        assert [kind for kind, _ in state["entries"]] == [
            "lead.received",
            "lead.message-sent",
            "lead.contact-attempted",
            "lead.qualified",
            "assignment.offered",
            "assignment.accepted",
            "lead.assigned",
            "lead.contacted",
            "lead.appointment-set",
            "lead.won",
        ]
        assert state["on_client_timeline"]
        last_contact = start + timedelta(minutes=9)  # the sale: the prospect's own contact
        assert state["clients"] == [("Inès Marchand", "+33698765432", last_contact)]

        # The same events again in one batch (a replay): the receipt's INSERT inserts nothing,
        # the fact is read once and nothing is written.
        replayed = await handle_batch(runtime, handlers, events)
        assert [s.split()[0] for s in _fact_statements(replayed)] == ["INSERT", "SELECT"]
        assert await written(runtime, batched) == state

        # The same life one event per transaction: the same fact.
        for event in [received(one_by_one, start), *life(one_by_one, start)]:
            await handle(runtime, handlers, event)
        reference = (await written(runtime, one_by_one))["fact"]
        ignored = {"lead_id", "updated_at", "fact_no", "changed_xid"}
        assert {k: v for k, v in state["fact"].items() if k not in ignored} == {
            k: v for k, v in reference.items() if k not in ignored
        }


async def test_a_batch_of_leads_writes_their_facts_and_entries_together(crm: CrmFactory) -> None:
    """Two leads' lives interleaved in one batch: their receipts' facts are one INSERT, their
    later steps' entries one INSERT, their facts one UPDATE (a parameter set each) and their
    site's calendar one read, with the rows of one event at a time."""
    async with worker_runtime(crm) as runtime:
        handlers = merge_handlers(client_handlers(runtime), sla_handlers(runtime))
        start = runtime.clock().replace(microsecond=0) - timedelta(hours=2)
        await handle(runtime, handlers, calendar(start - timedelta(days=1)))
        first, second, reference = (str(uuid.uuid4()) for _ in range(3))
        for event in [received(reference, start), *life(reference, start)]:
            await handle(runtime, handlers, event)
        lives = [[received(lead, start), *life(lead, start)] for lead in (first, second)]
        # Their receipts first (a new lead's fact is inserted then), then their steps, each
        # lead's in order, the two leads alternating.
        events = [lives[0][0], lives[1][0]] + [
            event for pair in zip(lives[0][1:], lives[1][1:], strict=True) for event in pair
        ]
        sent = await handle_batch(runtime, handlers, events)
        fact = [statement.split()[0] for statement in _fact_statements(sent)]
        assert fact == ["INSERT", "UPDATE"]  # both receipts' rows in one INSERT
        # the receipts' entries (their client: one INSERT) and the later steps' entries
        assert sum("INSERT INTO timeline_entry" in statement for statement in sent) == 2
        # the site's calendar read once for both leads
        assert sum(statement.startswith("SELECT sla_calendar") for statement in sent) == 1
        ignored = {"lead_id", "updated_at", "fact_lead_id"}
        expected = {
            k: v for k, v in (await written(runtime, reference))["fact"].items() if k not in ignored
        }
        for lead_id in (first, second):
            state = await written(runtime, lead_id)
            assert {k: v for k, v in state["fact"].items() if k not in ignored} == expected
            assert len(state["entries"]) == 10


async def test_a_batch_of_leads_one_event_each_reads_their_facts_together(
    crm: CrmFactory,
) -> None:
    """As in the pipeline: each hop takes time, so a polled batch carries one event of many
    leads, not a lead's life. Their SLA facts are inserted together (receipts), then read and
    locked together with their calendars (one SELECT on PostgreSQL; one per lead on SQLite,
    embedded) and updated together: a constant number of statements per batch, where each
    event read its fact (or inserted it) with a statement of its own. The rows are those of
    one event per transaction; a replayed batch writes nothing."""
    async with worker_runtime(crm) as runtime:
        handlers = merge_handlers(client_handlers(runtime), sla_handlers(runtime))
        on_postgres = runtime.engine.dialect.name == "postgresql"
        start = runtime.clock().replace(microsecond=0) - timedelta(hours=2)
        await handle(runtime, handlers, calendar(start - timedelta(days=1)))
        reference = str(uuid.uuid4())
        for event in [received(reference, start), *life(reference, start)]:
            await handle(runtime, handlers, event)
        leads = [str(uuid.uuid4()) for _ in range(5)]
        lives = [[received(lead, start), *life(lead, start)] for lead in leads]
        steps = [[life_[step] for life_ in lives] for step in range(len(lives[0]))]
        reads_per_batch = 1 if on_postgres else len(leads)
        for step, batch in enumerate(steps):
            sent = await handle_batch(runtime, handlers, batch)
            fact = [statement.split()[0] for statement in _fact_statements(sent)]
            if step == 0:  # the receipts: one INSERT (was one each)
                assert fact == ["INSERT"]
                # their entries recorded already?, their person's clients, their entries (one
                # INSERT), their facts: 4 (was 3 each: the match, the entry, the fact)
                assert len(sent) == 4
            elif batch[0].type == "lead.message-sent.v1":  # no SLA milestone
                assert fact == []
            elif batch[0].type == "lead.assigned.v1":  # changes no fact: read, not written
                assert fact == ["SELECT"] * reads_per_batch
            else:  # read with their calendars, then one UPDATE (was a SELECT each)
                assert fact == ["SELECT"] * reads_per_batch + ["UPDATE"], batch[0].type
            assert not any(statement.startswith("SELECT sla_calendar") for statement in sent)
        ignored = {"lead_id", "updated_at"}
        expected = {
            k: v for k, v in (await written(runtime, reference))["fact"].items() if k not in ignored
        }
        states = [await written(runtime, lead) for lead in leads]
        for state in states:
            assert {k: v for k, v in state["fact"].items() if k not in ignored} == expected

        # A step's batch again (a replay): the facts read, nothing written.
        replayed = await handle_batch(runtime, handlers, steps[3])
        assert [s.split()[0] for s in _fact_statements(replayed)] == ["SELECT"] * reads_per_batch
        assert [await written(runtime, lead) for lead in leads] == states


async def test_a_batch_of_receipts_resolves_their_people_together(crm: CrmFactory) -> None:
    """Receipts in one batch: read together, resolved in order (a receipt matches the client an
    earlier one of the batch made or completed), written together; the clients and entries are
    those of one receipt per transaction."""
    async with worker_runtime(crm) as runtime:
        handlers = merge_handlers(client_handlers(runtime), sla_handlers(runtime))
        at = runtime.clock().replace(microsecond=0) - timedelta(hours=2)
        known = {"full_name": "Paul Roux", "email": "paul@example.org"}
        await handle(runtime, handlers, received("L0", at, known))
        people = [
            ("L1", {"full_name": "Léa Petit", "phone": "+33611111111"}),
            # the same person: matched on the phone the first receipt's client has
            ("L2", {"first_name": "Léa", "full_name": "Léa Petit", "phone": "+33611111111"}),
            # a known client, by e-mail; it gains a phone
            ("L3", {"full_name": "Paul Roux", "email": "paul@example.org", "phone": "+33622"}),
            # matched by the phone the previous receipt gave that client
            ("L4", {"full_name": "P. Roux", "phone": "+33622"}),
        ]
        batch = [
            received(lead, at + timedelta(minutes=n), contact)
            for n, (lead, contact) in enumerate(people, 1)
        ]
        sent = await handle_batch(runtime, handlers, batch)
        # recorded?, clients of the keys, new clients, completed clients, entries, facts
        assert len(sent) == 6
        async with session_scope(runtime.session_factory) as session:
            clients = {
                c.full_name: (c.first_name, c.phone, c.email, c.last_contact_at)
                for c in (await session.scalars(select(Client))).all()
            }
            entries = {
                e.lead_id: (e.client_id, e.details["matched_on"])
                for e in (await session.scalars(select(TimelineEntry))).all()
            }
        assert clients == {
            "Paul Roux": (None, "+33622", "paul@example.org", at + timedelta(minutes=4)),
            "Léa Petit": ("Léa", "+33611111111", None, at + timedelta(minutes=2)),
        }
        assert [entries[lead][1] for lead in ("L0", "L1", "L2", "L3", "L4")] == [
            "new",
            "new",
            "phone",
            "email",
            "phone",
        ]
        assert entries["L1"][0] == entries["L2"][0] != entries["L0"][0] == entries["L3"][0]
        assert entries["L4"][0] == entries["L0"][0]

        # Again (a replay): the entries are found recorded, nothing is written.
        replayed = await handle_batch(runtime, handlers, batch)
        assert not [s for s in replayed if s.split()[0] in ("INSERT", "UPDATE") and "sla" not in s]
