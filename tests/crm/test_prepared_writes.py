"""PostgreSQL: the writes crm's worker sends for each of a lead's events held for the commit
(a new client with its first entry, a later step's entry with its client's last contact) go to
the driver as SQL compiled once with positional arguments
(``shared.db.prepared``): no SQLAlchemy compilation or parameter building per event. The
statements per event and the rows stay (``test_statements_per_lead``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from crm.settings import CrmSettings
from crm.sla.consumer import sla_handlers
from crm.worker import client_handlers
from shared.consumer import merge_handlers
from shared.runtime import Runtime
from tests.crm.conftest import CrmFactory
from tests.crm.test_statements_per_lead import (
    calendar,
    handle,
    handle_batch,
    life,
    received,
    worker_runtime,
    written,
)

HOT_WRITES = ("INSERT INTO timeline_entry", "INSERT INTO client")


@dataclass(frozen=True)
class Sent:
    sql: str
    parameters: Any
    compiled: bool  # compiled by SQLAlchemy for this execution (not prepared driver SQL)


@contextmanager
def sent(runtime: Runtime[CrmSettings]) -> Iterator[list[Sent]]:
    seen: list[Sent] = []

    def record(
        connection: Any, cursor: Any, sql: str, parameters: Any, context: Any, many: bool
    ) -> None:
        seen.append(Sent(sql, parameters, context.compiled is not None))

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _hot(seen: list[Sent]) -> list[Sent]:
    return [item for item in seen if any(write in item.sql for write in HOT_WRITES)]


@pytest.fixture
def crm_url(postgres_url: str) -> str:
    return postgres_url


@pytest.mark.postgres
async def test_a_leads_writes_one_event_at_a_time_are_prepared(crm: CrmFactory) -> None:
    async with worker_runtime(crm) as runtime:
        handlers = merge_handlers(client_handlers(runtime), sla_handlers(runtime))
        start = runtime.clock().replace(microsecond=0) - timedelta(hours=2)
        await handle(runtime, handlers, calendar(start - timedelta(days=1)))
        prepared, reference = str(uuid.uuid4()), str(uuid.uuid4())
        with sent(runtime) as seen:
            for envelope in [received(prepared, start), *life(prepared, start)]:
                await handle(runtime, handlers, envelope)
        hot = _hot(seen)
        # the client with its first entry, the 9 later entries
        assert sum("INSERT INTO client" in item.sql for item in hot) == 1
        assert sum("INSERT INTO timeline_entry" in item.sql for item in hot) == 10
        assert [item for item in hot if item.compiled] == []
        assert all(isinstance(item.parameters, tuple) for item in hot)
        # The same life in one transaction (the batch path, unchanged) as the reference.
        await handle_batch(runtime, handlers, [received(reference, start), *life(reference, start)])
        # The rows are those the events give (the statements per event are pinned elsewhere).
        mine, theirs = await written(runtime, prepared), await written(runtime, reference)
        ignored = {"lead_id", "updated_at"}
        assert {k: v for k, v in mine["fact"].items() if k not in ignored} == {
            k: v for k, v in theirs["fact"].items() if k not in ignored
        }
        # (the receipts differ: their source refs, the second matched the first's client)
        assert mine["entries"][1:] == theirs["entries"][1:]
        assert mine["entries"][0][0] == theirs["entries"][0][0] == "lead.received"
        assert mine["on_client_timeline"]
        assert mine["clients"] == theirs["clients"]
