"""Queueing from ``lead.received.v1`` (deadline per source, idempotent), the OpenAPI document,
and the migration that turns existing queue rows into open leads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import func, select, text

from qualify import MIGRATIONS_DIR
from qualify.models import QueuedLead
from shared.db import create_engine
from shared.db.migrate import alembic_config, upgrade
from shared.db.session import session_scope
from tests.qualify.conftest import QualifyApi
from tests.support.clock import TUESDAY_11H


async def test_deadline_per_source_and_idempotent_queueing(api: QualifyApi) -> None:
    facebook = await api.add_lead(source="facebook")
    email = await api.add_lead(source="email")
    again = await api.add_lead(source="email", lead_id=email, received_at=TUESDAY_11H)
    assert again == email
    async with session_scope(api.runtime.session_factory) as session:
        rows = {row.lead_id: row for row in (await session.scalars(select(QueuedLead))).all()}
        count = await session.scalar(select(func.count()).select_from(QueuedLead))
    assert count == 2
    assert rows[facebook].due_at == TUESDAY_11H + timedelta(minutes=5)  # per-source setting
    assert rows[email].due_at == TUESDAY_11H + timedelta(minutes=15)  # default
    assert rows[email].status == "waiting"
    assert rows[email].is_open


async def test_openapi_document_lists_the_operators_api(api: QualifyApi) -> None:
    document = (await api.base.get("/openapi.json")).json()
    paths = set(document["paths"])
    assert {
        "/v1/queue",
        "/v1/queue/claim",
        "/v1/leads/{lead_id}/claim",
        "/v1/leads/{lead_id}/claim/renewal",
        "/v1/leads/{lead_id}/attempts",
        "/v1/leads/{lead_id}/qualification",
        "/v1/leads/{lead_id}/disqualification",
        "/v1/leads/{lead_id}",
        "/v1/operators/me/stats",
        "/v1/operators/{operator_id}/stats",
        "/v1/leads/{lead_id}/callback",
        "/v1/leads/{lead_id}/reopening",
        "/v1/operators/me/callbacks",
        "/v1/operators/{operator_id}/callbacks",
        "/v1/routing",
        "/v1/routing/sources/{source}",
        "/v1/routing/sites/{site}",
    } <= paths
    callback = document["paths"]["/v1/leads/{lead_id}/callback"]["put"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(callback)


async def test_migration_keeps_queued_leads_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, url, "8ef6087fc975")
    engine = create_engine(url)
    received = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO queued_lead (lead_id, status, kind, source, received_at, "
                    "enqueued_at) VALUES ('old-lead', 'waiting', 'enquiry', 'email', :at, :at)"
                ),
                {"at": received.replace(tzinfo=None)},
            )
        await asyncio.to_thread(upgrade, MIGRATIONS_DIR, url)
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT is_open, due_at, attempt_count FROM queued_lead")
                )
            ).one()
        assert bool(row.is_open)
        assert str(row.due_at).startswith("2026-11-20 09:00:00")
        assert row.attempt_count == 0

        await asyncio.to_thread(
            command.downgrade, alembic_config(MIGRATIONS_DIR, url), "8ef6087fc975"
        )
        async with engine.connect() as connection:
            tables = {
                name
                for (name,) in (
                    await connection.execute(
                        text("SELECT name FROM sqlite_master WHERE type='table'")
                    )
                ).all()
            }
        assert "contact_attempt" not in tables
        assert "queued_lead" in tables
    finally:
        await engine.dispose()


async def test_migration_to_the_contact_schedule_keeps_leads_in_the_queue(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'before.db'}"
    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, url, "a98e66d49add")
    engine = create_engine(url)
    at = datetime(2026, 11, 20, 9, 0)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO queued_lead (lead_id, status, is_open, kind, source, "
                    "received_at, due_at, enqueued_at, attempt_count, unanswered_count) VALUES "
                    "('old', 'contacting', 1, 'enquiry', 'email', :at, :at, :at, 2, 2)"
                ),
                {"at": at},
            )
            for index, minutes in enumerate((5, 30)):
                await connection.execute(
                    text(
                        "INSERT INTO contact_attempt (id, lead_id, operator_id, operator_name, "
                        "channel, outcome, attempted_at, recorded_at) VALUES "
                        "(:id, 'old', 'op', 'Op', 'sms', 'no_answer', :at, :at)"
                    ),
                    {"id": f"a{index}", "at": at + timedelta(minutes=minutes)},
                )
        await asyncio.to_thread(upgrade, MIGRATIONS_DIR, url)
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT queue_rank, available_at, routing_path, last_attempt_at, "
                        "callback_at FROM queued_lead"
                    )
                )
            ).one()
        assert (row.queue_rank, row.available_at, row.routing_path) == (1, None, "qualify")
        assert str(row.last_attempt_at).startswith("2026-11-20 09:30:00")
        assert row.callback_at is None
        await asyncio.to_thread(
            command.downgrade, alembic_config(MIGRATIONS_DIR, url), "a98e66d49add"
        )
        async with engine.connect() as connection:
            kept = (await connection.execute(text("SELECT lead_id FROM queued_lead"))).all()
        assert [tuple(found) for found in kept] == [("old",)]
    finally:
        await engine.dispose()
