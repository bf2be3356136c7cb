"""Client CPU per lead of qualify's worker's hot statements, before and after they ran as
``shared.db.prepared`` driver SQL, in one process on PostgreSQL, the two ways alternated round
by round: the lead's insert (with the configuration's version and the lists) and its first
answer's two rows in one transaction, then, per message, the sender's fenced hand-over and its
outcome with the event (each in autocommit). "compiled" is main's way before (the statements
through the session's or connection's ``execute``: compile-cache look-up, parameter building,
the ORM execute path; the lead's unset columns set by attribute); "prepared" is the
repositories' way now. Same SQL round trips both ways; ``time.process_time`` per lead, median
and best of the rounds.

    .venv/bin/python -m benchmarks.qualify_worker_prepared_cpu [rounds] [leads_per_round]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import make_transient_to_detached

from qualify.leads.repository import (
    LeadRepository,
    _insert_new_checking_contacts,
    _new_lead_defaults,
)
from qualify.messages.events import MessageRef, sent_row
from qualify.messages.first_answer import first_answer_contacts
from qualify.messages.repository import (
    ClaimedWrites,
    MessageRepository,
    _insert_once_returning_id,
    _row,
    _staging,
    _update_claimed,
)
from qualify.models import OutgoingMessage, QueuedLead
from qualify.queue.handlers import new_lead
from shared.db.session import autocommit_connection, session_scope
from shared.events.payloads import ContactV1, LeadReceivedV1, VehicleV1
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.support.clock import Clock
from tests.support.infra import create_database, drop_database

Way = Callable[[QualifyApi], Awaitable[None]]


def _lead(api: QualifyApi) -> QueuedLead:
    lead_id = str(uuid.uuid4())
    event = LeadReceivedV1(
        lead_id=lead_id,
        kind="enquiry",
        source="leboncoin",
        source_ref=f"ref-{lead_id}",
        received_at=api.clock.now,
        contact=ContactV1(
            first_name="Camille",
            full_name="Camille Durand",
            phone=f"+3361{uuid.uuid4().int % 10**7:07d}",
            email=f"p-{lead_id[:8]}@example.fr",
        ),
        vehicle=VehicleV1(ad_ref="AD-1", make="Peugeot", model="208"),
    )
    return new_lead(api.policy, event, now=api.clock.now)


def _messages(api: QualifyApi, lead: QueuedLead) -> list[OutgoingMessage]:
    now = api.clock.now
    return [
        OutgoingMessage(
            id=str(uuid.uuid4()),
            lead_id=lead.lead_id,
            dedupe_key=f"{lead.lead_id}:first_answer:{channel}",
            kind="first_answer",
            channel=channel,
            status="sending",
            claim_token=str(uuid.uuid4()),
            to_address=lead.email if channel == "email" else lead.phone,
            subject="Votre demande" if channel == "email" else None,
            text="Bonjour, nous vous appelons avant 11h15.",
            created_at=now,
            expires_at=now + timedelta(hours=2),
            next_attempt_at=now,
            attempts=1,
        )
        for channel in ("email", "sms")
    ]


async def _sends(api: QualifyApi, messages: list[OutgoingMessage], compiled: bool) -> None:
    """Per message, the hand-over and the outcome with its event (autocommit)."""
    runtime = api.runtime
    writes = ClaimedWrites(runtime.session_factory)
    now = api.clock.now
    for message in messages:
        token = message.claim_token
        assert token is not None
        event = sent_row(runtime.outbox, MessageRef.of(message), sent_at=now)
        values: dict[str, Any] = {"status": "sent", "sent_at": now, "lease_expires_at": None}
        if not compiled:
            await writes.update(message.id, token, handed_over_at=now)
            await writes.update_staging(
                message.id, token, outbox=runtime.outbox.table, event=event, **values
            )
            continue
        async with autocommit_connection(runtime.engine) as connection:
            await connection.execute(
                _update_claimed(frozenset({"handed_over_at"})),
                {"_message_id": message.id, "_held_by": token, "handed_over_at": now},
            )
        async with autocommit_connection(runtime.engine) as connection:
            await connection.execute(
                *_staging(message.id, token, runtime.outbox.table, event, values)
            )


async def compiled_way(api: QualifyApi) -> None:
    """main's way before: through ``execute``, compiled (cached) per execution."""
    lead = _lead(api)
    contacts = first_answer_contacts(api.runtime.settings, lead)
    async with session_scope(api.runtime.session_factory) as session:
        values = lead.__dict__
        row = {name: values.get(name, default) for name, default in _new_lead_defaults().items()}
        parameters = {**row, "suppressed": contacts.suppressed, "blocked": contacts.blocked}
        found = (await session.execute(_insert_new_checking_contacts(), parameters)).all()
        assert any(item.list == "lead" for item in found)
        for name, value in row.items():
            if name not in values:
                setattr(lead, name, value)
        make_transient_to_detached(lead)
        session.add(lead)
        messages = _messages(api, lead)
        result = await session.execute(
            _insert_once_returning_id("postgresql"), [_row(message) for message in messages]
        )
        assert len(set(result.scalars().all())) == 2
    await _sends(api, messages, compiled=True)


async def prepared_way(api: QualifyApi) -> None:
    """The repositories' way now: ``Prepared`` driver SQL."""
    lead = _lead(api)
    contacts = first_answer_contacts(api.runtime.settings, lead)
    async with session_scope(api.runtime.session_factory) as session:
        inserted, _, _ = await LeadRepository.from_session(session).add_new_checking_contacts(
            lead, suppressed=contacts.suppressed, blocked=contacts.blocked
        )
        assert inserted
        messages = _messages(api, lead)
        found = await MessageRepository.from_session(session).add_all_once(messages, wake=False)
        assert len(found) == 2
    await _sends(api, messages, compiled=False)


async def _round(api: QualifyApi, way: Way, leads: int) -> float:
    start = time.process_time()
    for _ in range(leads):
        await way(api)
    return (time.process_time() - start) / leads


async def measure(rounds: int, leads: int) -> dict[str, list[float]]:
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = qualify_settings(url, Path(tmp))
            async with open_api(settings, Clock()) as api:
                ways: dict[str, Way] = {"compiled": compiled_way, "prepared": prepared_way}
                for way in ways.values():  # caches, the pool, asyncpg's prepared statements
                    await _round(api, way, 5)
                cpu: dict[str, list[float]] = {name: [] for name in ways}
                for index in range(rounds):
                    order = list(ways) if index % 2 == 0 else list(reversed(ways))
                    for name in order:
                        cpu[name].append(await _round(api, ways[name], leads))
                return cpu
    finally:
        await drop_database(url)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    leads = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    cpu = asyncio.run(measure(rounds, leads))
    for name, values in cpu.items():
        ordered = sorted(values)
        sys.stdout.write(
            f"{name}: CPU per lead median {ordered[len(ordered) // 2] * 1000:.2f} ms, best "
            f"{ordered[0] * 1000:.2f} ms ({rounds} rounds of {leads} leads; 1 transaction, "
            "2 statements, 2 writes in autocommit per message)\n"
        )


if __name__ == "__main__":
    main()
