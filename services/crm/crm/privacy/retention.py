"""Retention (CNIL): prospects are erased 3 years after their last own contact. Each run leaves an
evidence record; a dry run only counts. Clients are walked in keyset batches, each in its own
transaction, so memory stays flat whatever the number of clients."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import insert, select, update

from crm.models import Client, retention_run
from crm.privacy import service as privacy_service
from shared.clock import utcnow
from shared.db.session import SessionFactory, session_scope

log = structlog.get_logger(__name__)

DAILY = timedelta(days=1)


async def run_retention(
    sessions: SessionFactory,
    *,
    retention: timedelta,
    dry_run: bool,
    trigger: str,
    batch_size: int,
    hmac_key: bytes,
    now: datetime | None = None,
) -> str:
    """Run once; returns the evidence record's id."""
    started = now or utcnow()
    cutoff = started - retention
    run_id = str(uuid.uuid4())
    async with session_scope(sessions) as session:
        await session.execute(
            insert(retention_run).values(
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
            ids = list(
                (
                    await session.scalars(
                        select(Client.id)
                        .where(Client.last_contact_at < cutoff, Client.id > after)
                        .order_by(Client.id)
                        .limit(batch_size)
                    )
                ).all()
            )
            if not ids:
                break
            after = ids[-1]
            matched += len(ids)
            if not dry_run:
                for client_id in ids:
                    _, created = await privacy_service.request_erasure(
                        session,
                        client_id=client_id,
                        reason="retention",
                        requested_by=None,
                        hmac_key=hmac_key,
                    )
                    requested += int(created)
    async with session_scope(sessions) as session:
        await session.execute(
            update(retention_run)
            .where(retention_run.c.id == run_id)
            .values(finished_at=utcnow(), clients_matched=matched, erasures_requested=requested)
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
        last = await session.scalar(
            select(retention_run.c.started_at)
            .where(retention_run.c.dry_run.is_(False))
            .order_by(retention_run.c.started_at.desc())
            .limit(1)
        )
    return last is None or now - last >= DAILY
