"""An operator's claim and qualification on PostgreSQL send their one statement as SQL compiled
once (``shared.db.prepared``: positional arguments, no per-request compilation or parameter
building) and, each being a unit of work by itself, without an ORM session: on a pooled
connection in autocommit. With a marketing consent the qualification's statement runs in the
transaction the do-not-contact check may roll back. The answers, effects and refusals are
those of ``test_operator_statements`` (run on both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session

from qualify.models import infra
from qualify.qualification.repository import _qualify_held_prepared
from qualify.queue.repository import _CLAIM, _claim_prepared
from shared.db.session import wakeups_of
from shared.db.wakeup import OUTBOX
from shared.events.payloads import LeadQualifiedV1
from shared.outbox import event_row
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import QUALIFICATION, outbox
from tests.qualify.test_operator_statements import NO_CONSENT, lead_row
from tests.support.clock import Clock
from tests.support.executed import Sent, sent


@dataclass
class Recorded:
    every: list[Sent]  # every statement sent, the caller's authentication included
    through_sessions: int = 0  # statements run through an ORM session (its execution layer)

    @property
    def sent(self) -> list[Sent]:
        """The request's own statements (the authentication, cached per process, left out)."""
        return [item for item in self.every if "api_token" not in item.sql]

    def starting(self, prefix: str) -> list[Sent]:
        return [item for item in self.sent if " ".join(item.sql.split()).startswith(prefix)]


@contextmanager
def recorded(api: QualifyApi) -> Iterator[Recorded]:
    """The statements of the request's own work, and how many of them went through an ORM
    session."""

    def through_session(state: ORMExecuteState) -> None:
        if "api_token" not in str(state.statement):
            seen.through_sessions += 1

    with sent(api.runtime.engine) as every:
        seen = Recorded(every)
        event.listen(Session, "do_orm_execute", through_session)
        try:
            yield seen
        finally:
            event.remove(Session, "do_orm_execute", through_session)


@pytest.fixture
async def api(postgres_url: str, tmp_path: Path, clock: Clock) -> AsyncIterator[QualifyApi]:
    async with open_api(qualify_settings(postgres_url, tmp_path), clock) as api:
        yield api


@pytest.mark.postgres
async def test_a_claim_and_a_qualification_are_precompiled_without_a_session(
    api: QualifyApi,
) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    with recorded(api) as claiming:
        response = await alice.post(f"/v1/leads/{lead}/claim")
    assert response.status_code == 200, response.text
    [claim] = claiming.sent
    assert claim.sql.startswith("UPDATE queued_lead SET claimed_by="), claim.sql
    assert (claim.compiled, claim.autocommit) == (False, True)
    assert isinstance(claim.parameters, tuple)
    assert claiming.through_sessions == 0
    assert response.json()["operator_id"] == api.ids["alice"]
    assert (await lead_row(api, lead)).claimed_by == api.ids["alice"]

    relay = wakeups_of(api.runtime.session_factory).signal(OUTBOX)
    woken = relay.generation
    with recorded(api) as qualifying:
        response = await alice.post(f"/v1/leads/{lead}/qualification", json=NO_CONSENT)
    assert response.status_code == 201, response.text
    [qualification] = qualifying.sent
    assert qualification.sql.startswith("WITH closed AS"), qualification.sql
    assert (qualification.compiled, qualification.autocommit) == (False, True)
    assert isinstance(qualification.parameters, tuple)
    assert qualifying.through_sessions == 0
    assert relay.generation > woken  # woken once the statement has committed
    assert (await lead_row(api, lead)).status == "qualified"
    [(kind, data)] = await outbox(api, lead)
    assert (kind, data["contact"]["phone"]) == ("lead.qualified.v1", "+33612345678")


@pytest.mark.postgres
async def test_a_poll_of_the_queue_is_precompiled(api: QualifyApi) -> None:
    leads = [await api.add_lead(received_at=api.clock.now - timedelta(minutes=i)) for i in range(3)]
    alice = await api.client("alice")
    with recorded(api) as polling:
        first = await alice.get("/v1/queue", params={"limit": 2, "source": "leboncoin"})
    assert first.status_code == 200, first.text
    [poll] = polling.sent
    assert poll.sql.startswith("SELECT queued_lead.lead_id"), poll.sql
    assert (poll.compiled, poll.autocommit) == (False, True)
    page = first.json()
    assert [item["lead_id"] for item in page["items"]] == leads[:0:-1]
    assert page["items"][0]["received_at"] == "2026-11-24T09:58:00Z"  # as UtcDateTime reads it
    with recorded(api) as polling:
        rest = await alice.get("/v1/queue", params={"limit": 2, "cursor": page["next_cursor"]})
    assert [item["lead_id"] for item in rest.json()["items"]] == leads[:1]
    assert [item.compiled for item in polling.sent] == [False]


@pytest.mark.postgres
async def test_refusals_read_the_lead_after_the_precompiled_statement(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice, bob = await api.client("alice"), await api.client("bob")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    with recorded(api) as claiming:
        refused = await bob.post(f"/v1/leads/{lead}/claim")
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/lead-claimed")
    assert [item.compiled for item in claiming.sent] == [False, True]  # the UPDATE, the read
    with recorded(api) as qualifying:
        refused = await bob.post(f"/v1/leads/{lead}/qualification", json=NO_CONSENT)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/lead-claimed")
    assert [item.compiled for item in qualifying.sent] == [False, True]
    assert (await lead_row(api, lead)).claimed_by == api.ids["alice"]
    assert await outbox(api, lead) == []


@pytest.mark.postgres
async def test_a_qualification_with_a_consent_is_precompiled_in_its_transaction(
    api: QualifyApi,
) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    assert (await alice.post(f"/v1/leads/{lead}/claim")).status_code == 200
    with recorded(api) as qualifying:
        response = await alice.post(f"/v1/leads/{lead}/qualification", json=QUALIFICATION)
    assert response.status_code == 201, response.text
    [qualification] = qualifying.starting("WITH closed AS")
    assert (qualification.compiled, qualification.autocommit) == (False, False)
    assert len(qualifying.sent) == 2  # then the do-not-contact list, in the same transaction
    [(_, data)] = await outbox(api, lead)
    assert data["consents"]["sms"]["granted"] is True


@pytest.mark.postgres
async def test_claiming_the_next_lead_is_precompiled(api: QualifyApi) -> None:
    lead = await api.add_lead()
    alice = await api.client("alice")
    with recorded(api) as claiming:
        response = await alice.post("/v1/queue/claim")
    assert response.status_code == 200, response.text
    assert response.json()["lead_id"] == lead
    [claim] = claiming.starting("UPDATE queued_lead SET claimed_by=")
    assert not claim.compiled


def test_the_prepared_statements_are_sqlalchemys_and_each_parameter_has_a_source() -> None:
    """The driver SQL is SQLAlchemy's own; every parameter of the qualification's statement is
    one ``qualify_held`` passes or the statement's own literal (none left unbound when a column
    is added to the outbox or ``state.close`` changes)."""
    dialect = create_async_engine("postgresql+asyncpg://qualify@localhost/none").dialect
    assert _claim_prepared(dialect).sql == _CLAIM.compile(dialect=dialect).string
    row = event_row(
        source="qualify",
        event_type="lead.qualified.v1",
        subject="lead-1",
        payload=_payload(),
    )
    columns = tuple(sorted(name for name in row if name != "value"))
    prepared = _qualify_held_prepared(infra.outbox_event, columns, dialect)
    passed = {
        "_lead_id",
        "_operator_id",
        "_operator_name",
        "_now",
        "_site",
        "_path",
        "_data",
        "_vehicle_ad_ref",
        *(f"_event_{name}" for name in row),
    }
    assert {name for name in prepared.names if name not in prepared.constants} == passed


def _payload() -> LeadQualifiedV1:
    now = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    return LeadQualifiedV1.model_validate(
        {
            **{key: value for key, value in NO_CONSENT.items() if key != "consents"},
            "source": "api",
            "contact": {},
            "received_at": now,
            "lead_id": "lead-1",
            "qualified_at": now,
            "operator_id": "op-1",
            "path": "qualify",
        }
    )
