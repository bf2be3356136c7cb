"""The statements an operator's work sends per lead, on SQLite and PostgreSQL: a poll of the
queue is one statement, a claim one conditional UPDATE (both outside any transaction on
PostgreSQL: no BEGIN, no COMMIT), a qualification closes its lead with one conditional UPDATE
that returns it (no read FOR UPDATE before), then inserts the qualification and stages its
event; the effects, the refusals (404, 409s) and the do-not-contact rollback are unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Connection, event, select

from qualify.models import Qualification, QueuedLead, SuppressedContact
from qualify.suppression.service import lead_hashes
from shared.db.session import session_scope
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import QUALIFICATION, assert_problem, outbox
from tests.support.clock import Clock

NO_CONSENT: dict[str, Any] = {**QUALIFICATION, "consents": {}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'qualify.db'}"


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


async def test_a_qualification_closes_its_lead_in_one_statement(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    with statements(api) as sent:
        response = await alice.post(f"/v1/leads/{lead}/qualification", json=NO_CONSENT)
    assert response.status_code == 201, response.text
    # The closing UPDATE (returning the lead), the qualification, the event (was 4: a read
    # FOR UPDATE before, the UPDATE after).
    assert len(sent) == 3, sent
    assert sent[0].statement.lstrip().upper().startswith("UPDATE QUEUED_LEAD")

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
    assert qualification.data["vehicle_ad_ref"] == "AD-1"
    [(kind, data)] = await outbox(api, lead)
    assert kind == "lead.qualified.v1"
    assert data["contact"]["phone"] == "+33612345678"
    assert (data["source"], data["site"], data["path"]) == ("leboncoin", "LYON-01", "qualify")


async def test_a_qualification_with_a_consent_checks_the_list_in_one_more(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    with statements(api) as sent:
        response = await alice.post(f"/v1/leads/{lead}/qualification", json=QUALIFICATION)
    assert response.status_code == 201, response.text
    assert len(sent) == 4, sent  # was 5


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
    assert await qualifications(api, lead) == []
    assert await outbox(api, lead) == []
    assert (await alice.post(url, json=NO_CONSENT)).status_code == 201
