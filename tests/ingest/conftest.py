"""Fixtures of the ingest tests: the ingest service alone (SQLite + embedded bus by default), on
the real clock or on a test clock (``tests/support/clock.py``) its app and worker share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ingest.bootstrap import SERVICE
from ingest.models import infra
from ingest.settings import IngestSettings
from shared.clock import Clock, utcnow
from shared.worker import Worker
from tests.support.harness import RunningService, migrate, run_app, settings_for

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"

IngestFactory = Callable[..., AbstractAsyncContextManager[RunningService]]


def ingest_settings(tmp_path: Path, **values: Any) -> IngestSettings:
    values.setdefault("database_url", f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}")
    values.setdefault("bus", "embedded")
    values.setdefault("embedded_bus_path", tmp_path / "bus.db")
    values.setdefault("facebook_app_secrets", [APP_SECRET])
    values.setdefault("facebook_verify_token", VERIFY_TOKEN)
    values.setdefault("facebook_page_token", "page-token")
    values.setdefault("facebook_fetch_poll_interval_s", 0.05)
    values.setdefault("facebook_fetch_backoff_s", 0.05)
    settings = settings_for("ingest", **values)
    assert isinstance(settings, IngestSettings)
    return settings


@pytest.fixture
def ingest_service(tmp_path: Path) -> IngestFactory:
    """``async with ingest_service(worker=False, clock=utcnow, **settings) as service``."""

    @asynccontextmanager
    async def start(
        *, worker: bool = False, clock: Clock = utcnow, **values: Any
    ) -> AsyncIterator[RunningService]:
        settings = ingest_settings(tmp_path, **values)
        await migrate(settings)
        async with run_app(settings, clock=clock) as service:
            if worker:
                running = Worker(settings, infra=infra, consumers=SERVICE.consumers, clock=clock)
                await running.start()
                service.worker = running
                try:
                    yield service
                finally:
                    await running.stop()
            else:
                yield service

    return start


async def outbox_count(service: RunningService) -> int:
    runtime = service.app.state.runtime
    async with runtime.session_factory() as session:
        count = await session.scalar(select(func.count()).select_from(infra.outbox_event))
    return int(count or 0)
