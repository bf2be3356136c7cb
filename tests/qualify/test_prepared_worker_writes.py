"""The worker's hot statements of a new lead on PostgreSQL go to the driver as SQL compiled once
with positional arguments (``shared.db.prepared``): the lead's insert (with the configuration's
version and the lists), its first answer's rows, and the sender's hand-over and outcome. Each
lead skips SQLAlchemy's per-execution compilation, parameter building and its ORM session's
execute path; the effects stay (here, and in ``test_worker_statements``, ``test_first_answer``
on both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from qualify.leads.repository import _insert_new_checking_contacts_prepared
from qualify.messages.repository import _insert_rows_once_prepared
from qualify.models import OutgoingMessage, QueuedLead
from qualify.suppression.repository import SuppressionRepository
from qualify.suppression.service import address_hash
from shared.db.session import session_scope
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import outbox
from tests.qualify.test_worker_statements import running_sender
from tests.support.clock import Clock
from tests.support.executed import Sent, sent as sent_by


@contextmanager
def sent(api: QualifyApi) -> Iterator[list[Sent]]:
    with sent_by(api.runtime.engine) as seen:
        yield seen


@pytest.fixture
async def api(postgres_url: str, tmp_path: Path) -> AsyncIterator[QualifyApi]:
    settings = qualify_settings(postgres_url, tmp_path, message_dealer_name="Garage Dupont")
    async with open_api(settings, Clock()) as api:
        yield api


def _one(seen: list[Sent], prefix: str) -> Sent:
    found = [item for item in seen if item.sql.lstrip().startswith(prefix)]
    assert len(found) == 1, [item.sql[:80] for item in seen]
    return found[0]


@pytest.mark.postgres
async def test_a_new_leads_writes_are_prepared_driver_sql(api: QualifyApi) -> None:
    sender, handoff = running_sender(api)
    await api.add_lead(first_answer=True, handoff=handoff)  # the caches, the statements
    await sender.drain()

    with sent(api) as seen:
        lead = await api.add_lead(first_answer=True, handoff=handoff)
        await sender.drain()

    insert_lead = _one(seen, "WITH new_lead AS")
    insert_messages = _one(seen, "INSERT INTO outgoing_message")
    handed_over = [item for item in seen if "SET handed_over_at" in item.sql]
    outcomes = [item for item in seen if item.sql.lstrip().startswith("WITH changed AS")]
    assert len(handed_over) == 2
    assert len(outcomes) == 2
    for item in (insert_lead, insert_messages, *handed_over, *outcomes):
        assert not item.compiled, item.sql  # main compiled each of them for every lead
        assert isinstance(item.parameters, tuple)
    assert len(seen) == 6  # nothing else: no flush, no read
    # Both rows in one statement, one VALUES tuple each.
    assert len(insert_messages.parameters) == 2 * len(OutgoingMessage.__table__.columns)

    async with session_scope(api.runtime.session_factory) as session:
        assert await session.get(QueuedLead, lead) is not None
        rows = (
            await session.scalars(select(OutgoingMessage).where(OutgoingMessage.lead_id == lead))
        ).all()
    assert sorted(row.channel for row in rows) == ["email", "sms"]
    assert {row.status for row in rows} == {"sent"}
    assert all(row.handed_over_at is not None and row.claim_token for row in rows)
    kinds = [kind for kind, _ in await outbox(api, lead)]
    assert kinds.count("lead.message-sent.v1") == 2


@pytest.mark.postgres
async def test_the_prepared_lead_insert_reads_the_lists_as_before(api: QualifyApi) -> None:
    """The lists in the prepared insert are array parameters (``= ANY``): a blocked channel
    skips that channel, a person on the do-not-contact list skips both, others get both."""
    key = api.runtime.settings.privacy_hmac_key.get_secret_value().encode()
    async with session_scope(api.runtime.session_factory) as session:
        lists = SuppressionRepository.from_session(session)
        await lists.block(
            [address_hash("blocked@example.fr", key)],
            channel="email",
            reason="unsubscribe",
            at=api.clock.now,
        )
        await lists.add([address_hash("+33611111111", key)], reason="objection", at=api.clock.now)

    async def channels(lead_id: str) -> list[str]:
        async with session_scope(api.runtime.session_factory) as session:
            rows = await session.scalars(
                select(OutgoingMessage.channel).where(OutgoingMessage.lead_id == lead_id)
            )
            return sorted(rows.all())

    free = await api.add_lead(first_answer=True, email="free@example.fr")
    blocked = await api.add_lead(first_answer=True, email="blocked@example.fr")
    suppressed = await api.add_lead(first_answer=True, phone="+33611111111")
    assert await channels(free) == ["email", "sms"]
    assert await channels(blocked) == ["sms"]
    assert await channels(suppressed) == []
    # A replay of a lead (a new event id) queues nothing and answers nothing again.
    assert await api.add_lead(first_answer=True, lead_id=free) == free
    assert await channels(free) == ["email", "sms"]


@pytest.mark.postgres
async def test_the_prepared_statements_are_plain_positional_sql(api: QualifyApi) -> None:
    """What is prepared is compiled once per dialect (and per row count): the same object for
    every lead, its parameters named in the order the SQL numbers them."""
    dialect = api.runtime.engine.dialect
    lead = _insert_new_checking_contacts_prepared(dialect)
    assert lead is _insert_new_checking_contacts_prepared(dialect)
    assert "= ANY (" in lead.sql
    assert " IN " not in lead.sql
    assert lead.names[-2:] == ("suppressed", "blocked")
    two = _insert_rows_once_prepared(dialect, 2)
    assert two is _insert_rows_once_prepared(dialect, 2)
    assert "ON CONFLICT (dedupe_key) DO NOTHING RETURNING" in two.sql
    assert two.names[0] == "id__0"
    assert two.names[-1].endswith("__1")
