"""Raw inputs older than the retention period are deleted, newer ones kept, and the run leaves an
evidence row."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from ingest.bootstrap import SERVICE
from ingest.models import RawInput, RawInputPurge
from ingest.raw_inputs.retention import purge_raw_inputs
from shared.db import create_engine, make_session_factory, session_scope
from shared.db.migrate import upgrade


def raw(received_at: datetime) -> RawInput:
    body = b"From: someone@example.fr\r\n\r\nBonjour"
    return RawInput(
        id=str(uuid.uuid4()),
        channel="email",
        content_type="message/rfc822",
        body=body,
        size=len(body),
        sha256=hashlib.sha256(body + received_at.isoformat().encode()).hexdigest(),
        received_at=received_at,
        outcome="lead",
        lead_id=None,
        reason=None,
    )


async def test_purge_keeps_recent_inputs_and_leaves_evidence(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"
    await asyncio.to_thread(upgrade, SERVICE.migrations, url)
    engine = create_engine(url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    async with session_scope(sessions) as session:
        session.add_all([raw(now - timedelta(days=31)), raw(now - timedelta(days=29))])
    evidence = await purge_raw_inputs(sessions, retention=timedelta(days=30), now=now)
    async with sessions() as session:
        left = await session.scalar(select(func.count()).select_from(RawInput))
        runs = (await session.scalars(select(RawInputPurge))).all()
    await engine.dispose()
    assert left == 1
    assert evidence.purged == 1
    assert [(run.purged, run.cutoff) for run in runs] == [(1, now - timedelta(days=30))]
