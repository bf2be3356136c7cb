"""The statements an operator's work sends per lead, on SQLite and PostgreSQL: a poll of the
queue is one statement, a claim one conditional UPDATE (both outside any transaction on
PostgreSQL: no BEGIN, no COMMIT). A qualification closes its lead with one conditional UPDATE
that returns it (no read FOR UPDATE before), inserts the qualification and stages its event:
on PostgreSQL all three are one statement (data-modifying CTEs), in autocommit unless a
marketing consent makes the do-not-contact list to check; on SQLite three statements. The
effects, the event's data, the relay's wake-up (in the process and through the database), the
refusals (404, 409s) and the do-not-contact rollback are unchanged."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from sqlalchemy import Connection, event, select

from qualify.app import create_app
from qualify.models import Qualification, QueuedLead, SuppressedContact
from qualify.qualification.schemas import QualificationIn
from qualify.suppression.service import lead_hashes
from shared.db.session import session_scope, wakeups_of
from shared.db.wakeup import OUTBOX, ChangeListener, Wakeups
from shared.events.payloads import LeadQualifiedV1
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import QUALIFICATION, assert_problem, outbox
from tests.support.clock import Clock

NO_CONSENT: dict[str, Any] = {**QUALIFICATION, "consents": {}}


@pytest.fixture
async def api(database_url: str, tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    async with open_api(qualify_settings(database_url, tmp_path), clock) as api:
        yield api


class Sent(NamedTuple):
    statement: str
    autocommit: bool  # sent outside a transaction: no BEGIN or COMMIT round trip around it


@contextmanager
def statements(api: QualifyApi) -> Iterator[list[Sent]]:
    """The statements of the request's own work sent meanwhile (one round trip each). The
    caller's authentication is left out: it is cached per process (and read again after a
    token changes anywhere), not part of the path counted."""
    sent: list[Sent] = []

    def record(connection: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if "api_token" not in statement:
            isolation = connection.get_execution_options().get("isolation_level")
            sent.append(Sent(statement, isolation == "AUTOCOMMIT"))

    engine = api.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def on_postgres(api: QualifyApi) -> bool:
    """Autocommit pays on PostgreSQL only (on SQLite BEGIN and COMMIT are no round trips)."""
    return api.runtime.engine.dialect.name == "postgresql"


async def lead_row(api: QualifyApi, lead_id: str) -> QueuedLead:
    async with session_scope(api.runtime.session_factory) as session:
        lead = await session.get(QueuedLead, lead_id)
        assert lead is not None
        return lead


async def qualifications(api: QualifyApi, lead_id: str) -> list[Qualification]:
    async with session_scope(api.runtime.session_factory) as session:
        found = await session.scalars(select(Qualification).where(Qualification.lead_id == lead_id))
        return list(found)


async def test_a_queue_poll_is_one_statement_outside_a_transaction(api: QualifyApi) -> None:
    leads = [await api.add_lead(received_at=api.clock.now - timedelta(minutes=i)) for i in range(3)]
    alice = await api.client("alice")
    with statements(api) as sent:
        first = await alice.get("/v1/queue", params={"limit": 2})
    assert first.status_code == 200, first.text
    # One round trip on PostgreSQL (was three: BEGIN, the page, COMMIT).
    assert [entry.autocommit for entry in sent] == [on_postgres(api)], sent
    page = first.json()
    assert [item["lead_id"] for item in page["items"]] == leads[:0:-1]
    assert page["items"][0]["overdue"] is False
    assert page["items"][0]["full_name"] == "Camille Durand"
    rest = await alice.get("/v1/queue", params={"limit": 2, "cursor": page["next_cursor"]})
    assert [item["lead_id"] for item in rest.json()["items"]] == leads[:1]
    assert rest.json()["next_cursor"] is None


async def test_a_claim_is_one_statement_outside_a_transaction(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    with statements(api) as sent:
        response = await alice.post(f"/v1/leads/{lead}/claim")
    assert response.status_code == 200, response.text
    # One round trip on PostgreSQL (was three: BEGIN, the UPDATE, COMMIT).
    assert [entry.autocommit for entry in sent] == [on_postgres(api)], sent
    assert (await lead_row(api, lead)).claimed_by == api.ids["alice"]
    bob = await api.client("bob")
    refused = assert_problem(await bob.post(f"/v1/leads/{lead}/claim"), 409, "lead-claimed")
    assert refused["claim_expires_at"] is not None
    assert_problem(await bob.post("/v1/leads/nope/claim"), 404)
    assert (await lead_row(api, lead)).claimed_by == api.ids["alice"]


async def test_a_qualification_is_one_statement_on_postgresql(api: QualifyApi) -> None:
    received = datetime(2026, 11, 24, 8, 30, 15, 250000, tzinfo=UTC)  # microseconds kept
    lead = await api.add_lead(received_at=received)
    alice = await api.client("alice")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    relay = wakeups_of(api.runtime.session_factory).signal(OUTBOX)
    woken = relay.generation
    with statements(api) as sent:
        response = await alice.post(f"/v1/leads/{lead}/qualification", json=NO_CONSENT)
    assert response.status_code == 201, response.text
    if on_postgres(api):
        # The closing UPDATE, the qualification and the event in one statement, committed by
        # itself (was 3 statements between BEGIN and COMMIT: 5 round trips).
        [closing] = sent
        assert closing.autocommit, sent
        sql = " ".join(closing.statement.split()).upper()
        assert sql.startswith("WITH CLOSED AS (UPDATE QUEUED_LEAD"), sql
        assert "INSERT INTO QUALIFICATION" in sql
        assert "INSERT INTO OUTBOX_EVENT" in sql
    else:
        # The closing UPDATE (returning the lead), the qualification, the event.
        assert len(sent) == 3, sent
        assert sent[0].statement.lstrip().upper().startswith("UPDATE QUEUED_LEAD")
    assert relay.generation > woken  # this process's relay publishes it at once
    assert response.json()["qualification"]["vehicle_ad_ref"] == "AD-1"  # the lead's ad

    closed = await lead_row(api, lead)
    assert (closed.status, closed.is_open, closed.handled_by) == (
        "qualified",
        False,
        api.ids["alice"],
    )
    assert closed.closed_at == api.clock.now
    assert (closed.claimed_by, closed.claimed_by_name, closed.claimed_at) == (None, None, None)
    assert closed.claim_expires_at is None
    assert (closed.site, closed.routing_path) == ("LYON-01", "qualify")
    [qualification] = await qualifications(api, lead)
    assert qualification.operator_id == api.ids["alice"]
    assert qualification.data == {
        **QualificationIn.model_validate(NO_CONSENT).model_dump(mode="json"),
        "vehicle_ad_ref": "AD-1",
    }
    [(kind, data)] = await outbox(api, lead)
    assert kind == "lead.qualified.v1"
    # The event ``record_qualification`` stages: the lead's fields from the closed lead.
    assert data == LeadQualifiedV1.model_validate(
        {
            **qualification.data,
            "lead_id": lead,
            "source": "leboncoin",
            "received_at": received,
            "qualified_at": api.clock.now.astimezone(UTC),
            "operator_id": api.ids["alice"],
            "path": "qualify",
            "contact": {
                "full_name": "Camille Durand",
                "email": "camille@example.fr",
                "phone": "+33612345678",
            },
        }
    ).model_dump(mode="json")
    assert data["received_at"] == "2026-11-24T08:30:15.250000Z"


async def test_a_qualification_keeps_its_own_ad_and_a_lead_without_contact(
    api: QualifyApi,
) -> None:
    lead = await api.add_lead(phone=None, email="camille@example.fr", ad_ref=None)
    alice = await api.client("alice")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    response = await alice.post(f"/v1/leads/{lead}/qualification", json=NO_CONSENT)
    assert response.status_code == 201, response.text
    assert response.json()["qualification"]["vehicle_ad_ref"] is None
    [(_, data)] = await outbox(api, lead)
    assert data["vehicle_ad_ref"] is None
    assert data["contact"] == {
        "first_name": None,
        "last_name": None,
        "full_name": "Camille Durand",
        "email": "camille@example.fr",
        "phone": None,
    }
    assert data["received_at"] == api.clock.now.astimezone(UTC).isoformat().replace("+00:00", "Z")

    other = await api.add_lead()
    assert (await alice.post(f"/v1/leads/{other}/claim")).status_code == 200
    body = {**NO_CONSENT, "vehicle_ad_ref": "AD-9"}
    response = await alice.post(f"/v1/leads/{other}/qualification", json=body)
    assert response.json()["qualification"]["vehicle_ad_ref"] == "AD-9"
    [qualification] = await qualifications(api, other)
    assert qualification.data["vehicle_ad_ref"] == "AD-9"
    [(_, data)] = await outbox(api, other)
    assert data["vehicle_ad_ref"] == "AD-9"


@pytest.mark.postgres
async def test_a_qualification_wakes_other_processes_relays(
    postgres_url: str, tmp_path: Path, clock: Clock
) -> None:
    """The outbox's NOTIFY trigger fires for the row the one statement inserts."""
    async with open_api(qualify_settings(postgres_url, tmp_path), clock) as api:
        elsewhere = Wakeups()  # another process's: none of the API's connections are its own
        relay = elsewhere.signal(OUTBOX)
        stop = asyncio.Event()
        listener = ChangeListener(postgres_url, elsewhere)
        task = asyncio.create_task(listener.run(stop))
        try:
            await asyncio.wait_for(listener.listening.wait(), 10)
            lead = await api.add_lead()
            alice = await api.client("alice")
            assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
            woken = relay.generation
            response = await alice.post(f"/v1/leads/{lead}/qualification", json=NO_CONSENT)
            assert response.status_code == 201, response.text
            assert await relay.wait(woken, 10)
        finally:
            stop.set()
            await task


async def test_a_qualification_with_a_consent_checks_the_list_in_one_more(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    relay = wakeups_of(api.runtime.session_factory).signal(OUTBOX)
    woken = relay.generation
    with statements(api) as sent:
        response = await alice.post(f"/v1/leads/{lead}/qualification", json=QUALIFICATION)
    assert response.status_code == 201, response.text
    # PostgreSQL: the one statement, then the list, in a transaction (it may roll back; was 5).
    assert [entry.autocommit for entry in sent] == [False] * (2 if on_postgres(api) else 4), sent
    assert relay.generation > woken
    [(_, data)] = await outbox(api, lead)
    assert data["consents"]["sms"]["granted"] is True
    assert data["contact"]["phone"] == "+33612345678"


async def test_a_qualification_without_a_site_keeps_the_leads(api: QualifyApi) -> None:
    lead = await api.add_lead()
    async with session_scope(api.runtime.session_factory) as session:
        stored = await session.get(QueuedLead, lead)
        assert stored is not None
        stored.site = "PARIS-02"
    alice = await api.client("alice")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    body = {**{k: v for k, v in NO_CONSENT.items() if k != "site"}, "channel": "full_web"}
    response = await alice.post(f"/v1/leads/{lead}/qualification", json=body)
    assert response.status_code == 201, response.text
    assert (await lead_row(api, lead)).site == "PARIS-02"


async def test_refused_qualifications_say_why_and_change_nothing(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    bob = await api.client("bob")
    url = f"/v1/leads/{lead}/qualification"
    assert_problem(await alice.post("/v1/leads/nope/qualification", json=NO_CONSENT), 404)
    assert_problem(await alice.post(url, json=NO_CONSENT), 409, "claim-required")
    assert (await bob.post(f"/v1/leads/{lead}/claim")).status_code == 200
    assert_problem(await alice.post(url, json=NO_CONSENT), 409, "lead-claimed")
    api.clock.now += api.policy.lease + timedelta(seconds=1)
    assert_problem(await bob.post(url, json=NO_CONSENT), 409, "claim-required")
    unchanged = await lead_row(api, lead)
    assert (unchanged.status, unchanged.is_open, unchanged.claimed_by) == (
        "waiting",
        True,
        api.ids["bob"],
    )
    assert await qualifications(api, lead) == []
    assert await outbox(api, lead) == []

    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    assert (await alice.post(url, json=NO_CONSENT)).status_code == 201
    assert_problem(await alice.post(url, json=NO_CONSENT), 409, "lead-closed")
    assert len(await qualifications(api, lead)) == 1


async def test_a_consent_for_a_listed_person_is_refused_and_the_lead_stays_open(
    api: QualifyApi,
) -> None:
    lead = await api.add_lead()
    key = api.runtime.settings.privacy_hmac_key.get_secret_value().encode()
    async with session_scope(api.runtime.session_factory) as session:
        listed = lead_hashes(await session.get_one(QueuedLead, lead), key)[0]
        session.add(
            SuppressedContact(contact_hash=listed, reason="objection", suppressed_at=api.clock.now)
        )
    alice = await api.client("alice")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    url = f"/v1/leads/{lead}/qualification"
    assert_problem(await alice.post(url, json=QUALIFICATION), 409, "contact-suppressed")

    still = await lead_row(api, lead)  # the closing UPDATE was rolled back
    assert (still.status, still.is_open, still.claimed_by) == ("waiting", True, api.ids["alice"])
    assert await qualifications(api, lead) == []  # rolled back with it
    assert await outbox(api, lead) == []
    assert (await alice.post(url, json=NO_CONSENT)).status_code == 201
    assert len(await qualifications(api, lead)) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/queue"),
        ("POST", "/v1/leads/{lead_id}/claim"),
        ("POST", "/v1/leads/{lead_id}/qualification"),
    ],
)
def test_the_hot_routes_solve_two_dependencies_without_a_thread_hop(method: str, path: str) -> None:
    """The poll, the claim and the qualification take the caller and the runtime, nothing more
    (each dependency is a step of FastAPI's solve on every request; a session's generator
    dependency an exit stack too), and no plain ``def`` dependency (run in the thread pool)."""
    app = create_app(qualify_settings("sqlite+aiosqlite:///:memory:", Path("/nonexistent")))
    [dependant] = [
        dependant
        for context in iter_route_contexts(app.routes)
        if context.path_format == path
        and method in (context.methods or ())
        and isinstance(dependant := getattr(context, "dependant", None), Dependant)
    ]
    dependencies = dependant.dependencies
    assert len(dependencies) == 2, [dependency.call for dependency in dependencies]
    for dependency in dependencies:
        call: Any = dependency.call
        assert inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(call.__call__)
