"""SQL of raw inputs."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from sqlalchemy import delete, select

from ingest.models import RawInput, RawInputPurge
from shared.db.repository import Repository


class RawInputRepository(Repository):
    async def store(
        self, *, channel: str, content_type: str, body: bytes, received_at: datetime
    ) -> RawInput:
        raw = RawInput(
            id=str(uuid.uuid4()),
            channel=channel,
            content_type=content_type[:120],
            body=body,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            received_at=received_at,
            outcome="pending",
        )
        self.session.add(raw)
        await self.session.flush()
        return raw

    async def get(self, raw_input_id: str) -> RawInput | None:
        return await self.session.get(RawInput, raw_input_id)

    async def settled_twin(self, *, channels: tuple[str, ...], body: bytes) -> RawInput | None:
        """An earlier input with the same bytes on one of the channels that reached an outcome."""
        digest = hashlib.sha256(body).hexdigest()
        return await self.session.scalar(
            select(RawInput)
            .where(
                RawInput.sha256 == digest,
                RawInput.channel.in_(channels),
                RawInput.outcome.in_(("lead", "ignored", "quarantined")),
            )
            .order_by(RawInput.received_at)
            .limit(1)
        )

    async def purge_received_before(self, cutoff: datetime) -> int:
        """Delete raw inputs older than ``cutoff`` (the retention job). Returns the count."""
        result = await self.session.execute(delete(RawInput).where(RawInput.received_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    def record_purge(self, *, ran_at: datetime, cutoff: datetime, purged: int) -> RawInputPurge:
        """The evidence row of a retention run (no data: time, cutoff, count)."""
        evidence = RawInputPurge(id=str(uuid.uuid4()), ran_at=ran_at, cutoff=cutoff, purged=purged)
        self.session.add(evidence)
        return evidence
