"""GDPR plumbing every service shares: keyed hashes of contact keys, and the erasure handler that
runs a service's own ``erase`` function and answers ``privacy.erasure-completed.v1`` in the same
transaction, then (once committed) empties the SQLite write-ahead log of the erased rows."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import CursorResult, MetaData, Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from shared.clock import utcnow
from shared.consumer import EventConsumer, Handler, build_consumer
from shared.db.engine import truncate_wal
from shared.db.session import after_commit
from shared.events import Envelope, Topics
from shared.events.privacy import (
    ErasureCompletedV1,
    ErasureRequestedV1,
    ExportProvidedV1,
    ExportRequestedV1,
)
from shared.outbox import event_source, stage
from shared.runtime import Runtime

ERASURE_REQUESTED = "privacy.erasure-requested.v1"
ERASURE_COMPLETED = "privacy.erasure-completed.v1"
CONTACT_SUPPRESSED = "privacy.contact-suppressed.v1"
EXPORT_REQUESTED = "privacy.export-requested.v1"
EXPORT_PROVIDED = "privacy.export-provided.v1"
# Every service that holds personal data answers every erasure request.
ERASURE_PARTICIPANTS: tuple[str, ...] = ("ingest", "qualify", "dispatch", "crm")
# Infrastructure tables without personal data (the outbox has some until published: erased).
INFRA_TABLES = frozenset({"processed_event", "dead_letter", "api_token", "erased_subject"})

Eraser = Callable[[AsyncSession, ErasureRequestedV1], Awaitable[dict[str, int]]]
Exporter = Callable[[AsyncSession, ExportRequestedV1], Awaitable[dict[str, list[dict[str, Any]]]]]


def contact_hash(value: str, key: bytes) -> str:
    """HMAC-SHA256 of a normalised contact key (E.164 phone, case-folded e-mail)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


async def remember_erased(session: AsyncSession, table: Table, lead_ids: Sequence[str]) -> None:
    """Record erased leads so that their late events are skipped (ids only, no personal data)."""
    if not lead_ids:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    await session.execute(
        insert(table)
        .values([{"subject": lead_id, "erased_at": now} for lead_id in lead_ids])
        .on_conflict_do_nothing(index_elements=["subject"])
    )


def erasure_handler(
    *, service: str, outbox: Table, erased_subjects: Table, erase: Eraser
) -> Handler:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        request = ErasureRequestedV1.model_validate(envelope.data)
        if request.services is not None and service not in request.services:
            return  # a re-ask of the services that have not answered: this one has
        # Idempotent: asked again (a re-ask, a redelivery), it erases what is left (nothing)
        # and answers again; crm keeps the first answer.
        erased = await erase(session, request)
        await remember_erased(session, erased_subjects, request.lead_ids)
        answer = ErasureCompletedV1(
            request_id=request.request_id,
            client_id=request.client_id,
            service=service,
            erased=erased,
            completed_at=utcnow(),
        )
        await stage(
            session,
            outbox,
            source=event_source(service),
            event_type=ERASURE_COMPLETED,
            subject=request.client_id,
            payload=answer,
        )
        # Once the deletions are committed, no older copy of the rows may stay in the SQLite
        # write-ahead log (PostgreSQL: docs/operations.md).
        engine = _engine_of(session)
        if engine is not None:
            after_commit(session, partial(truncate_wal, engine))

    return handle


def _engine_of(session: AsyncSession) -> AsyncEngine | None:
    bind = session.bind
    if isinstance(bind, AsyncConnection):
        return bind.engine
    return bind


def lead_scoped_eraser(
    metadata: MetaData,
    *,
    key_columns: Mapping[str, str] | None = None,
    skip: frozenset[str] = frozenset(),
) -> Eraser:
    """An eraser deleting, in every table of ``metadata`` that has a lead key, the rows of the
    request's leads (children before parents). The lead key is the ``lead_id`` column unless
    ``key_columns`` names another one for a table (ingest's ``lead`` is keyed by ``id``).
    Unpublished outbox events of those leads are deleted too (they would carry the data out);
    the other infrastructure tables hold no personal data and are skipped."""
    overrides = {"outbox_event": "subject", **(key_columns or {})}
    skipped = skip | INFRA_TABLES

    async def erase(session: AsyncSession, request: ErasureRequestedV1) -> dict[str, int]:
        erased: dict[str, int] = {}
        for table in reversed(metadata.sorted_tables):
            column_name = overrides.get(table.name, "lead_id")
            if table.name in skipped or column_name not in table.c:
                continue
            keys = list(request.lead_ids)
            if table.name == "outbox_event":
                keys.append(request.client_id)  # e.g. an unpublished export share
            result = cast(
                CursorResult[Any],
                await session.execute(delete(table).where(table.c[column_name].in_(keys))),
            )
            erased[table.name] = int(result.rowcount or 0)
        return erased

    return erase


def privacy_consumer(
    runtime: Runtime[Any],
    *,
    erase: Eraser,
    export: Exporter,
    extra_handlers: Mapping[str, Handler] | None = None,
) -> EventConsumer:
    """The consumer of the privacy topic every service runs: it answers erasure requests with
    ``erase`` (plus any handlers of the service's own, e.g. crm's progress tracking)."""
    service = runtime.settings.service_name
    return build_consumer(
        runtime,
        name=f"{service}.privacy",
        topics=[Topics.PRIVACY],
        handlers={
            ERASURE_REQUESTED: erasure_handler(
                service=service,
                outbox=runtime.infra.outbox_event,
                erased_subjects=runtime.infra.erased_subject,
                erase=erase,
            ),
            EXPORT_REQUESTED: export_handler(
                service=service, outbox=runtime.infra.outbox_event, export=export
            ),
            **(extra_handlers or {}),
        },
    )


def export_handler(*, service: str, outbox: Table, export: Exporter) -> Handler:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        request = ExportRequestedV1.model_validate(envelope.data)
        share = ExportProvidedV1(
            request_id=request.request_id,
            client_id=request.client_id,
            service=service,
            data=await export(session, request),
            provided_at=utcnow(),
        )
        await stage(
            session,
            outbox,
            source=event_source(service),
            event_type=EXPORT_PROVIDED,
            subject=request.client_id,
            payload=share,
        )

    return handle


def lead_scoped_exporter(
    metadata: MetaData,
    *,
    key_columns: Mapping[str, str] | None = None,
    skip: frozenset[str] = frozenset(),
) -> Exporter:
    """Every row of the request's leads, table by table (the same tables the eraser reaches)."""
    overrides = dict(key_columns or {})
    skipped = skip | INFRA_TABLES | {"outbox_event"}

    async def export(
        session: AsyncSession, request: ExportRequestedV1
    ) -> dict[str, list[dict[str, Any]]]:
        data: dict[str, list[dict[str, Any]]] = {}
        if not request.lead_ids:
            return data
        for table in metadata.sorted_tables:
            column_name = overrides.get(table.name, "lead_id")
            if table.name in skipped or column_name not in table.c:
                continue
            rows = (
                await session.execute(
                    select(table).where(table.c[column_name].in_(request.lead_ids))
                )
            ).all()
            if rows:
                data[table.name] = [_jsonable(dict(row._mapping)) for row in rows]
        return data

    return export


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(row, default=_default))
    return loaded


def _default(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
