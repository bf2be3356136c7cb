"""Retention of raw inputs: what a source sent is deleted after INGEST_RAW_INPUT_RETENTION_DAYS;
each run leaves an evidence row (time, cutoff, count)."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from ingest.models import RawInputPurge
from ingest.raw_inputs.repository import RawInputRepository
from shared.db.session import SessionFactory, session_scope

log = structlog.get_logger(__name__)


async def purge_raw_inputs(
    sessions: SessionFactory, *, retention: timedelta, now: datetime
) -> RawInputPurge:
    cutoff = now - retention
    async with session_scope(sessions) as session:
        raw_inputs = RawInputRepository.from_session(session)
        purged = await raw_inputs.purge_received_before(cutoff)
        evidence = raw_inputs.record_purge(ran_at=now, cutoff=cutoff, purged=purged)
    log.info("retention.raw_inputs_purged", purged=purged, cutoff=cutoff.isoformat())
    return evidence
