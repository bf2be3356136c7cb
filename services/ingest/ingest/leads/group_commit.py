"""Group commit of the JSON intake: leads of concurrent requests share one transaction.

Each lead is still durable before its 202 (lead row and ``lead.received.v1`` outbox row,
committed together), but the requests waiting at the same moment are written by one multi-row
``INSERT … ON CONFLICT DO NOTHING`` and one ``COMMIT`` instead of a transaction of four round
trips each. No timer: the first lead is written at once, and the leads that arrive while a batch
is in the database form the next one, so a lone request waits no longer than before.

A batch that fails is retried lead by lead, so one bad row fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import structlog
from sqlalchemy import Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ingest.leads.service import Acceptance, insert_lead
from ingest.models import Lead, infra
from shared.outbox import insert_into
from shared.redact import safe_error_text

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


class LeadGroupCommit:
    def __init__(self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        # One writer at a time (measured: a second one in flight gains nothing, batches shrink).
        self._writer: asyncio.Task[None] | None = None
        self._dialect = engine.dialect.name

    async def accept(self, lead: dict[str, Any], event: dict[str, Any]) -> Acceptance:
        """Write ``lead`` with its outbox ``event`` (or find the lead it replays); returns once
        committed. A cancelled caller does not cancel the write."""
        pending = _Pending(lead, event)
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="lead-group-commit")
        return await pending.future

    async def close(self) -> None:
        """Wait for the batch in flight (shutdown: requests already gone must still be written
        before the engine is disposed)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

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
        async with self._engine.begin() as connection:
            inserted = set(
                (
                    await connection.execute(
                        insert_lead(self._dialect), [pending.lead for pending in batch]
                    )
                ).scalars()
            )
            fresh = [pending.event for pending in batch if pending.lead["id"] in inserted]
            if fresh:
                await connection.execute(insert_into(infra.outbox_event), fresh)
            replays = [pending for pending in batch if pending.lead["id"] not in inserted]
            existing = await _existing_ids(connection, replays) if replays else {}
        return [
            Acceptance(pending.lead["id"], duplicate=False)
            if pending.lead["id"] in inserted
            else Acceptance(existing[_ref(pending)], duplicate=True)
            for pending in batch
        ]


def _ref(pending: _Pending) -> tuple[str, str]:
    return pending.lead["source"], pending.lead["source_ref"]


async def _existing_ids(
    connection: AsyncConnection, replays: Sequence[_Pending]
) -> dict[tuple[str, str], str]:
    """Ids of the leads that replays point at (stored earlier, or by this very batch)."""
    table = cast(Table, Lead.__table__)
    rows = await connection.execute(
        select(table.c.source, table.c.source_ref, table.c.id).where(
            tuple_(table.c.source, table.c.source_ref).in_({_ref(p) for p in replays})
        )
    )
    return {(source, source_ref): lead_id for source, source_ref, lead_id in rows}


def _settle(batch: Sequence[_Pending], results: Sequence[Acceptance]) -> None:
    for pending, result in zip(batch, results, strict=True):
        if not pending.future.done():
            pending.future.set_result(result)


def _fail(pending: _Pending, exc: Exception) -> None:
    if not pending.future.done():
        pending.future.set_exception(exc)
