"""A client is read in one snapshot: the record and its timeline never come from two moments.

The worker may commit a step (a timeline entry and the retention clock it restarts) at any time
while the API reads the client. Each statement sees its own snapshot (SQLite's autocommit reads,
PostgreSQL's READ COMMITTED), so a client read by one SELECT and its timeline by another could
show the new entry beside the old ``last_contact_at``. The test commits that step between the
read's statements, at the first SELECT of the client table, and checks the answer is whole."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from crm.clients.timeline import on_lead_event
from shared.db import session_scope
from shared.events import Envelope
from shared.events.payloads import ContactV1
from tests.crm.conftest import CrmFactory, receive, runtime_of
from tests.support.harness import RunningService

PERSON = ContactV1(full_name="Inès Bernard", phone="+33698765432")


def _commit_during_first_client_read(service: RunningService, envelope: Envelope) -> list[bool]:
    """Hook the API's engine: right after the first SELECT of ``client`` has run, the worker's
    step commits on another connection (once). The list says whether it ran."""
    runtime = runtime_of(service)
    engine = runtime.session_factory.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    done: list[bool] = []

    async def commit_step() -> None:
        async with session_scope(runtime.session_factory) as session:
            await on_lead_event(session, envelope)

    def after_execute(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if done or not statement.lstrip().upper().startswith("SELECT"):
            return
        if "FROM client" not in statement:
            return
        done.append(True)
        await_only(commit_step())  # the request's greenlet waits while the step commits

    event.listen(engine.sync_engine, "after_cursor_execute", after_execute)
    return done


@pytest.mark.parametrize("read", ["one", "search"])
async def test_a_step_committed_mid_read_is_all_or_nothing_in_the_answer(
    crm: CrmFactory, read: str
) -> None:
    async with crm.running() as system:
        service = system.services["crm"]
        client_id = await receive(service, PERSON)
        runtime = runtime_of(service)
        before = (await system.crm.get(f"/v1/clients/{client_id}")).json()
        lead_id = before["timeline"][0]["lead_id"]
        later = runtime.clock() + timedelta(minutes=5)
        appointment = Envelope(
            source="/test",
            type="lead.appointment-set.v1",
            subject=lead_id,
            data={
                "lead_id": lead_id,
                "assignment_id": "as-1",
                "seller_id": "s-1",
                "appointment_at": later.isoformat(),
                "set_at": later.isoformat(),
            },
            time=later,
        )
        done = _commit_during_first_client_read(service, appointment)

        if read == "one":
            response = await system.crm.get(f"/v1/clients/{client_id}")
            answer = response.json()
        else:
            response = await system.crm.get("/v1/clients", params={"phone": PERSON.phone})
            answer = response.json()["items"][0]
        assert response.status_code == 200
        assert done, "the step did not commit during the read"

        has_appointment = len(answer["timeline"]) == 2
        clock_restarted = answer["last_contact_at"] != before["last_contact_at"]
        assert has_appointment == clock_restarted, answer
        # Once read again, the step is there whole.
        after = (await system.crm.get(f"/v1/clients/{client_id}")).json()
        assert [entry["kind"] for entry in after["timeline"]] == [
            "lead.received",
            "lead.appointment-set",
        ]
        assert after["last_contact_at"] > before["last_contact_at"]
