"""The worker's per-lead write on PostgreSQL goes to the driver as SQL compiled once with
positional arguments (``shared.db.prepared``): each lead's offer skips SQLAlchemy's
per-execution compilation and parameter building; so does the webhook sender's record of a
delivered pass, in autocommit without an ORM session. The SQL
and the arguments are the ones SQLAlchemy's own compiled execution would send, and the effects
stay (checked here and in ``test_statements_per_lead``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import ARRAY, String, Table, bindparam, event, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import create_async_engine

from dispatch.assignments.intake import on_qualified
from dispatch.assignments.repository import _new_lead_offer_prepared
from dispatch.models import Assignment, DispatchLead, Seller, WebhookDelivery, infra
from shared.db.prepared import Prepared
from shared.db.session import session_scope
from shared.events.payloads import ContactV1, LeadQualifiedV1
from tests.dispatch.conftest import DispatchApi, Receiver
from tests.support.clock import Clock
from tests.support.executed import Sent, sent as sent_by


def _postgresql() -> Dialect:
    return create_async_engine("postgresql+asyncpg://dispatch@localhost/none").dialect


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


@contextmanager
def sent(api: DispatchApi) -> Iterator[list[Sent]]:
    with sent_by(api.runtime.engine) as seen:
        yield seen


@pytest.fixture
def api(dispatch_on_postgres: DispatchApi) -> DispatchApi:
    return dispatch_on_postgres


@pytest.mark.postgres
async def test_the_offer_is_prepared_driver_sql(
    api: DispatchApi, receiver: Receiver, clock: Clock
) -> None:
    await api.site()
    seller = await api.seller("alice", webhook_url=receiver.url("alice"))
    receiver.secrets["alice"] = seller["webhook_secret"]
    handoff = api.handoff()
    async with httpx.AsyncClient() as client:
        sender = api.sender(client, handoff)
        assert await sender.send_due() == 0  # nothing due: the next pass records only
        with sent(api) as intake:
            lead_id = await api.qualify(handoff)
        writes = [item for item in intake if "INSERT INTO dispatch_lead" in item.sql]
        assert len(writes) == 1
        assert not writes[0].compiled  # main compiled it, ~75 parameters built by name each time
        assert isinstance(writes[0].parameters, tuple)
        assert len(writes[0].parameters) == 75
        # Another worker's offer, leased to its own sender a second later: the pass's pause.
        clock.advance(seconds=1)
        await api.qualify(api.handoff())
        with sent(api) as delivery:
            assert await sender.send_due() == 1
        # The pass's record of the delivered offer: one statement, driver SQL in autocommit
        # (main: compiled, its parameters built by name, in an ORM session's execution); the
        # due time it reads is typed as the compiled one was (the other offer's lease).
        assert [
            (item.sql.startswith("WITH result AS"), item.compiled, item.autocommit)
            for item in delivery
        ] == [(True, False, True)]
        assert await sender.pause(3600) == api.settings.webhook_lease_s
    async with api.runtime.session_factory() as session:
        offer = (
            await session.scalars(select(Assignment).where(Assignment.lead_id == lead_id))
        ).one()
        message = (
            await session.scalars(select(WebhookDelivery).where(WebhookDelivery.lead_id == lead_id))
        ).one()
        load = await session.scalar(select(Seller.open_count).where(Seller.id == seller["id"]))
    assert (offer.seller_id, offer.status, offer.is_open) == (seller["id"], "offered", True)
    assert (message.status, message.attempts) == ("delivered", 1)
    assert load == 2  # both offers
    assert [item.webhook_id for item in receiver.of("alice")] == [message.id]


def test_prepared_sql_and_arguments_are_those_of_the_compiled_execution() -> None:
    """The statement's own SQL and processed arguments, in the SQL's order, the statement's
    literals (``+ 1``) included."""
    dialect = _postgresql()
    sellers = _table(Seller)
    statement = (
        update(sellers)
        .where(sellers.c.id == bindparam("seller_id"))
        .values(open_count=sellers.c.open_count + 1, last_offered_at=bindparam("now"))
        .add_cte(select(bindparam("keys", type_=ARRAY(String())), bindparam("now")).cte("keys_cte"))
    )
    now = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    params = {"seller_id": "s-1", "now": now, "keys": ["a", "b"]}
    prepared = Prepared.compile(statement, dialect)
    compiled = statement.compile(dialect=dialect)
    assert prepared.sql == compiled.string
    expected = compiled.construct_params(params)
    processors: Mapping[str, Any] = compiled._bind_processors
    assert prepared.arguments_of(params) == tuple(
        processors[name](expected[name]) if name in processors else expected[name]
        for name in compiled.positiontup or ()
    )
    assert 1 in prepared.arguments_of(params)  # the literal of ``open_count + 1``


def test_every_parameter_of_the_new_lead_offer_has_a_source() -> None:
    """Each of the offer statement's parameters is taken from the lead, the assignment, a row
    or the statement itself: none is left unbound when a column is added to a table."""
    prepared, plan = _new_lead_offer_prepared(infra.outbox_event, _postgresql())
    assert len(plan) == len(prepared.names)
    lead_keys = {key for source, key in plan if source == -2}
    assert lead_keys == {column.key for column in _table(DispatchLead).columns}
    assert {key for source, key in plan if source == -1} == {
        column.key for column in _table(Assignment).columns
    }


@pytest.mark.postgres
async def test_the_probe_is_prepared_and_only_the_offered_seller_is_made_an_instance(
    api: DispatchApi,
) -> None:
    """Intake's probe (with the pool's first page) is driver SQL compiled once, its contact
    hashes one array parameter; its rows become instances only where the step uses them: the
    site, and of the page's sellers the one offered the lead (main loaded every seller of the
    page as an ORM instance, and expanded the hashes' IN list at each execution)."""
    await api.site()
    sellers = [(await api.seller(name))["id"] for name in ("alice", "bob", "carol")]
    payload = LeadQualifiedV1(
        lead_id=str(uuid.uuid4()),
        source="leboncoin",
        received_at=api.clock.now - timedelta(minutes=30),
        qualified_at=api.clock.now,
        operator_id="op-1",
        contact=ContactV1(full_name="Jeanne Martin", phone="+33612345678"),
        intent="buy",
        channel="in_store",
        site="lyon",
    )
    persistent: list[Any] = []  # every instance the session came to hold, as it did
    async with session_scope(api.runtime.session_factory) as session:
        for name in ("loaded_as_persistent", "detached_to_persistent"):
            event.listen(session.sync_session, name, lambda _, item: persistent.append(item))
        with sent(api) as intake:
            lead = await on_qualified(api.step(session), payload)
    probes = [item for item in intake if "FROM (SELECT EXISTS" in item.sql]
    assert [(item.compiled, type(item.parameters)) for item in probes] == [(False, tuple)]
    assert lead.status == "offered"
    assert "Site" in {type(item).__name__ for item in persistent}
    # Least loaded, ties by id: the page's first seller, the only one made an instance.
    assert [item.id for item in persistent if isinstance(item, Seller)] == [min(sellers)]
