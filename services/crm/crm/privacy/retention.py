"""Retention (CNIL): prospects are erased 3 years after their last own contact. Each run leaves an
evidence record; a dry run only counts. Clients are walked in keyset batches, each in its own
transaction, so memory stays flat whatever the number of clients."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog

from crm.clients.repository import ClientRepository
from crm.privacy import service as privacy_service
from crm.privacy.models import RetentionRun
from crm.privacy.repository import RetentionRepository
from crm.privacy.schemas import RetentionTrigger
from shared.clock import Clock
from shared.db.session import SessionFactory, session_scope
from shared.outbox import Outbox

log = structlog.get_logger(__name__)

DAILY = timedelta(days=1)


async def run_retention(
    sessions: SessionFactory,
    outbox: Outbox,
    *,
    clock: Clock,
    retention: timedelta,
    dry_run: bool,
    trigger: RetentionTrigger,
    batch_size: int,
    hmac_key: bytes,
) -> str:
    """Run once; returns the evidence record's id."""
    started = clock()
    cutoff = started - retention
    run_id = str(uuid.uuid4())
    async with session_scope(sessions) as session:
        await RetentionRepository.from_session(session).add(
            RetentionRun(
                id=run_id,
                started_at=started,
                finished_at=None,
                dry_run=dry_run,
                trigger=trigger,
                cutoff=cutoff,
                clients_matched=0,
                erasures_requested=0,
            )
        )
    matched = requested = 0
    after = ""
    while True:
        async with session_scope(sessions) as session:
            ids = await ClientRepository.from_session(session).last_contact_before(
                cutoff, after=after, limit=batch_size
            )
            if not ids:
                break
            after = ids[-1]
            matched += len(ids)
            if not dry_run:
                for client_id in ids:
                    _, created = await privacy_service.request_erasure(
                        session,
                        outbox,
                        client_id=client_id,
                        reason="retention",
                        requested_by=None,
                        hmac_key=hmac_key,
                        now=clock(),
                    )
                    requested += int(created)
    async with session_scope(sessions) as session:
        await RetentionRepository.from_session(session).finish(
            run_id, finished_at=clock(), matched=matched, requested=requested
        )
    log.info(
        "privacy.retention_run",
        run_id=run_id,
        dry_run=dry_run,
        matched=matched,
        requested=requested,
    )
    return run_id


async def daily_run_due(sessions: SessionFactory, *, now: datetime) -> bool:
    """True when no real (not dry) run started in the last 24 hours."""
    async with sessions() as session:
        last = await RetentionRepository.from_session(session).last_real_start()
    return last is None or now - last >= DAILY
