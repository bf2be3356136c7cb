"""Group commit of the JSON intake: leads of concurrent requests share one transaction.

Each lead is still durable before its 202 (lead row and ``lead.received.v1`` outbox row,
committed together), but the requests waiting at the same moment are written together. On
PostgreSQL a batch is ONE statement (the leads' ``INSERT … ON CONFLICT DO NOTHING`` and the
events of those inserted, ``LeadBatchWriter``: compiled once, sent without an ORM session on a
connection the writer holds in autocommit), atomic on its own: one round trip, no BEGIN and
COMMIT around it. On SQLite, two multi-row inserts in one transaction. No timer: the
first lead is written at once, and the leads that arrive while a batch is in the database form
the next one, so a lone request waits no longer than before.

A batch that fails is retried lead by lead, so one bad row fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from ingest.leads.repository import LeadBatchWriter, LeadRepository
from ingest.leads.service import Acceptance, event_row
from ingest.settings import IngestSettings
from shared.db.session import SessionFactory, read_only
from shared.outbox import Outbox
from shared.redact import safe_error_text
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

MAX_BATCH = 256
"""Leads per transaction: bounds the statement size and the work lost to a failed batch."""


@dataclass
class _Pending:
    lead: dict[str, Any]
    event: dict[str, Any]
    future: asyncio.Future[Acceptance] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def ref(self) -> tuple[str, str]:
        return self.lead["source"], self.lead["source_ref"]


class LeadGroupCommit:
    def __init__(
        self, sessions: SessionFactory, outbox: Outbox, *, max_batch: int = MAX_BATCH
    ) -> None:
        self._sessions = sessions
        # SQLite: one session for every batch (the writer is alone: one batch at a time): a new
        # session per batch cost ~120 more Python calls a batch, +15 % for a lone lead (measured).
        self._session = sessions()
        # PostgreSQL writes a batch in one statement, without a session (``LeadBatchWriter``).
        engine = sessions.kw["bind"]
        self._at_once = (
            LeadBatchWriter(engine, outbox.table) if engine.dialect.name == "postgresql" else None
        )
        self._outbox = outbox
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        # One writer at a time (measured: a second one in flight gains nothing, batches shrink).
        self._writer: asyncio.Task[None] | None = None

    async def accept(self, lead: dict[str, Any]) -> Acceptance:
        """Write ``lead`` (a ``lead_row``) with its ``lead.received.v1`` event (or find the lead
        it replays); returns once committed. A cancelled caller does not cancel the write."""
        # The event is built here, in the caller's trace context, not in the writer's task.
        pending = _Pending(lead, event_row(lead, source=self._outbox.source))
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="lead-group-commit")
        return await pending.future

    async def close(self) -> None:
        """Wait for the batch in flight (shutdown: requests already gone must still be written
        before the engine is disposed)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._session.close()
        if self._at_once is not None:
            await self._at_once.close()

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                _settle(batch, await self._write(batch))
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch[0], exc)
                    continue
                log.warning(
                    "ingest.group_commit_split", size=len(batch), error=safe_error_text(exc)
                )
                for pending in batch:
                    try:
                        _settle([pending], await self._write([pending]))
                    except Exception as single:
                        _fail(pending, single)

    async def _write(self, batch: Sequence[_Pending]) -> list[Acceptance]:
        """The new leads with their events, atomically, then the ids replays point at (stored
        earlier, or by this very batch)."""
        if self._at_once is not None:
            return await self._write_at_once(self._at_once, batch)
        async with self._session.begin():
            leads = LeadRepository.from_session(self._session)
            inserted = await leads.accept_new(
                self._outbox,
                [pending.lead for pending in batch],
                [pending.event for pending in batch],
            )
            replays = {pending.ref for pending in batch if pending.lead["id"] not in inserted}
            existing = await leads.ids_by_source_ref(replays) if replays else {}
        return _acceptances(batch, inserted, existing)

    async def _write_at_once(
        self, writer: LeadBatchWriter, batch: Sequence[_Pending]
    ) -> list[Acceptance]:
        """PostgreSQL: the batch is one statement, its own transaction (no BEGIN and COMMIT
        round trips); replays, rare, are looked up after it."""
        inserted = await writer.accept_new(
            [pending.lead for pending in batch],
            [pending.event for pending in batch],
        )
        replays = {pending.ref for pending in batch if pending.lead["id"] not in inserted}
        existing: dict[tuple[str, str], str] = {}
        if replays:
            async with read_only(self._sessions) as session:
                existing = await LeadRepository.from_session(session).ids_by_source_ref(replays)
        return _acceptances(batch, inserted, existing)


@asynccontextmanager
async def lead_group_commit(runtime: Runtime[IngestSettings]) -> AsyncIterator[None]:
    """Lifespan hook of the API: the group commit is made once the runtime is open and closed
    (its batch in flight written) before the runtime's engine is disposed."""
    writer = LeadGroupCommit(runtime.session_factory, runtime.outbox)
    runtime.provide(writer)
    try:
        yield
    finally:
        await writer.close()


def _acceptances(
    batch: Sequence[_Pending], inserted: set[str], existing: dict[tuple[str, str], str]
) -> list[Acceptance]:
    """Each lead's answer: accepted if this batch inserted it, else a replay of ``existing``."""
    return [
        Acceptance(pending.lead["id"], duplicate=False)
        if pending.lead["id"] in inserted
        else Acceptance(existing[pending.ref], duplicate=True)
        for pending in batch
    ]


def _settle(batch: Sequence[_Pending], results: Sequence[Acceptance]) -> None:
    for pending, result in zip(batch, results, strict=True):
        if not pending.future.done():
            pending.future.set_result(result)


def _fail(pending: _Pending, exc: Exception) -> None:
    if not pending.future.done():
        pending.future.set_exception(exc)
