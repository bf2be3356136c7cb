"""SQL of the GDPR module: erasure requests and their progress, exports, retention runs, the
do-not-contact list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crm.privacy.models import (
    ContactObjection,
    ErasureProgress,
    ErasureRequest,
    ExportPart,
    ExportRequest,
    RetentionRun,
)
from crm.privacy.schemas import ContactKind, ObjectionReason
from shared.db.repository import Repository


class ErasureRepository(Repository):
    async def get(self, request_id: str) -> ErasureRequest | None:
        return await self.session.get(ErasureRequest, request_id)

    async def by_client(self, client_id: str) -> ErasureRequest | None:
        return await self.session.scalar(
            select(ErasureRequest).where(ErasureRequest.client_id == client_id)
        )

    async def open_requests(self, limit: int) -> Sequence[ErasureRequest]:
        query = (
            select(ErasureRequest)
            .where(ErasureRequest.completed_at.is_(None))
            .order_by(ErasureRequest.due_at)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def add(self, request: ErasureRequest) -> None:
        self.session.add(request)
        await self.session.flush()  # one request per client: a second one fails here

    async def asked_before(self, moment: datetime, limit: int) -> Sequence[ErasureRequest]:
        """Open requests last asked at or before ``moment``, longest waiting first, locked (a
        second crm worker skips them: one re-ask per period)."""
        query = (
            select(ErasureRequest)
            .where(ErasureRequest.completed_at.is_(None), ErasureRequest.asked_at <= moment)
            .order_by(ErasureRequest.asked_at, ErasureRequest.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(query)).all()

    async def open_requested_before(self, moment: datetime, limit: int) -> Sequence[str]:
        """Ids of the open requests made at or before ``moment``."""
        query = (
            select(ErasureRequest.id)
            .where(ErasureRequest.completed_at.is_(None), ErasureRequest.requested_at <= moment)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def answered(self, request_ids: Sequence[str]) -> dict[str, set[str]]:
        """The services that answered, per request."""
        answered: dict[str, set[str]] = {request_id: set() for request_id in request_ids}
        if not request_ids:
            return answered
        rows = await self.session.execute(
            select(ErasureProgress.request_id, ErasureProgress.service).where(
                ErasureProgress.request_id.in_(request_ids)
            )
        )
        for request_id, service in rows:
            answered[request_id].add(service)
        return answered

    async def progress(self, request_id: str) -> Sequence[ErasureProgress]:
        return (
            await self.session.scalars(
                select(ErasureProgress).where(ErasureProgress.request_id == request_id)
            )
        ).all()

    async def add_progress(self, progress: ErasureProgress) -> None:
        self.session.add(progress)
        await self.session.flush()

    async def complete(self, request_id: str, completed_at: datetime) -> None:
        await self.session.execute(
            update(ErasureRequest)
            .where(ErasureRequest.id == request_id, ErasureRequest.completed_at.is_(None))
            .values(completed_at=completed_at)
        )


class ExportRepository(Repository):
    async def add(self, request: ExportRequest) -> None:
        self.session.add(request)
        await self.session.flush()

    async def get(self, request_id: str) -> ExportRequest | None:
        return await self.session.get(ExportRequest, request_id)

    async def latest(self, client_id: str) -> ExportRequest | None:
        return await self.session.scalar(
            select(ExportRequest)
            .where(ExportRequest.client_id == client_id)
            .order_by(ExportRequest.requested_at.desc())
            .limit(1)
        )

    async def parts(self, request_id: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Each answering service's share, by service."""
        rows = await self.session.scalars(
            select(ExportPart).where(ExportPart.request_id == request_id)
        )
        return {part.service: part.data for part in rows}

    async def answered(self, request_id: str) -> set[str]:
        """The services that gave their share."""
        rows = await self.session.scalars(
            select(ExportPart.service).where(ExportPart.request_id == request_id)
        )
        return set(rows)

    async def add_part(self, part: ExportPart) -> None:
        self.session.add(part)
        await self.session.flush()

    async def complete(self, request_id: str, completed_at: datetime) -> None:
        await self.session.execute(
            update(ExportRequest)
            .where(ExportRequest.id == request_id)
            .values(completed_at=completed_at)
        )

    async def forget(self, *, client_id: str | None, before: datetime | None) -> int:
        """Delete exports of a client (erasure) or older than ``before`` (retention)."""
        statement = delete(ExportRequest)
        if client_id is not None:
            statement = statement.where(ExportRequest.client_id == client_id)
        if before is not None:
            statement = statement.where(ExportRequest.requested_at < before)
        result = cast(CursorResult[Any], await self.session.execute(statement))
        return int(result.rowcount or 0)


class RetentionRepository(Repository):
    async def add(self, run: RetentionRun) -> None:
        self.session.add(run)
        await self.session.flush()

    async def get(self, run_id: str) -> RetentionRun | None:
        return await self.session.get(RetentionRun, run_id)

    async def finish(
        self, run_id: str, *, finished_at: datetime, matched: int, requested: int
    ) -> None:
        await self.session.execute(
            update(RetentionRun)
            .where(RetentionRun.id == run_id)
            .values(finished_at=finished_at, clients_matched=matched, erasures_requested=requested)
        )

    async def latest(self, limit: int) -> Sequence[RetentionRun]:
        return (
            await self.session.scalars(
                select(RetentionRun).order_by(RetentionRun.started_at.desc()).limit(limit)
            )
        ).all()

    async def last_real_start(self) -> datetime | None:
        """When the latest run that was not a dry run started."""
        return await self.session.scalar(
            select(RetentionRun.started_at)
            .where(RetentionRun.dry_run.is_(False))
            .order_by(RetentionRun.started_at.desc())
            .limit(1)
        )


class ObjectionRepository(Repository):
    async def add(
        self,
        *,
        contact_hash: str,
        kind: ContactKind,
        reason: ObjectionReason,
        recorded_at: datetime,
        recorded_by: str | None,
    ) -> None:
        """Record an objection; the first one of a contact stays (its reason and date)."""
        postgres = self.session.get_bind().dialect.name == "postgresql"
        insert = pg_insert if postgres else sqlite_insert
        await self.session.execute(
            insert(ContactObjection)
            .values(
                contact_hash=contact_hash,
                kind=kind,
                reason=reason,
                recorded_at=recorded_at,
                recorded_by=recorded_by,
            )
            .on_conflict_do_nothing(index_elements=["contact_hash"])
        )

    async def earliest(self, hashes: Sequence[str]) -> ContactObjection | None:
        """The first objection recorded for any of these contact hashes."""
        return await self.session.scalar(
            select(ContactObjection)
            .where(ContactObjection.contact_hash.in_(hashes))
            .order_by(ContactObjection.recorded_at)
            .limit(1)
        )
