"""SQL of the quarantine and the ignored inputs (keyset pages, newest first)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select

from ingest.models import IgnoredInput, QuarantinedInput, RawInput
from ingest.quarantine.schemas import QuarantineStatus
from shared.db.repository import Repository


class QuarantineRepository(Repository):
    def add(
        self, raw: RawInput, *, now: datetime, facebook_fetch_id: str | None = None
    ) -> QuarantinedInput:
        """A new entry for ``raw`` (its reason and status are set by the caller)."""
        entry = QuarantinedInput(
            id=str(uuid.uuid4()),
            raw_input_id=raw.id,
            channel=raw.channel,
            attempts=0,
            created_at=now,
            facebook_fetch_id=facebook_fetch_id,
        )
        self.session.add(entry)
        return entry

    def add_ignored(self, raw: RawInput, *, reason: str, now: datetime) -> IgnoredInput:
        record = IgnoredInput(
            id=str(uuid.uuid4()),
            raw_input_id=raw.id,
            channel=raw.channel,
            reason=reason,
            created_at=now,
        )
        self.session.add(record)
        return record

    async def open_of(self, raw_input_id: str) -> QuarantinedInput | None:
        """The open entry of a raw input, if any."""
        return await self.session.scalar(
            select(QuarantinedInput)
            .where(QuarantinedInput.raw_input_id == raw_input_id, QuarantinedInput.status == "open")
            .limit(1)
        )

    async def ignored_of(self, raw_input_id: str) -> IgnoredInput | None:
        return await self.session.scalar(
            select(IgnoredInput).where(IgnoredInput.raw_input_id == raw_input_id).limit(1)
        )

    async def get(self, quarantine_id: str) -> QuarantinedInput | None:
        return await self.session.get(QuarantinedInput, quarantine_id)

    async def page(
        self, *, status: QuarantineStatus | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[QuarantinedInput]:
        table = QuarantinedInput
        statement = select(table).order_by(table.created_at.desc(), table.id.desc()).limit(limit)
        if status is not None:
            statement = statement.where(table.status == status)
        if after is not None:
            moment, key = after
            statement = statement.where(
                or_(table.created_at < moment, and_(table.created_at == moment, table.id < key))
            )
        return list(await self.session.scalars(statement))

    async def ignored_page(
        self, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[IgnoredInput]:
        table = IgnoredInput
        statement = select(table).order_by(table.created_at.desc(), table.id.desc()).limit(limit)
        if after is not None:
            moment, key = after
            statement = statement.where(
                or_(table.created_at < moment, and_(table.created_at == moment, table.id < key))
            )
        return list(await self.session.scalars(statement))
