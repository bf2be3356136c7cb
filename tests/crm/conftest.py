"""Helpers of the SLA tests: the crm service alone (SQLite or PostgreSQL), facts recorded through
the consumer's own code path (``SlaRepository.apply``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from crm.sla.observations import Observation
from crm.sla.repository import SlaRepository
from crm.sla.stages import policy_from_settings
from shared.db import session_scope
from shared.runtime import Runtime
from tests.support.harness import RunningService, run_system, settings_for
from tests.support.infra import create_database, drop_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
        return
    url = await create_database()
    yield url
    await drop_database(url)


class CrmFactory:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path

    def running(self, **values: Any) -> Any:
        settings = settings_for(
            "crm",
            database_url=self.url,
            embedded_bus_path=self.tmp_path / "bus.db",
            **values,
        )
        return run_system({"crm": settings}, workers=False)


@pytest.fixture
def crm(crm_url: str, tmp_path: Path) -> CrmFactory:
    return CrmFactory(crm_url, tmp_path)


async def record(service: RunningService, observations: Iterable[Observation]) -> None:
    runtime = service.app.state.runtime
    assert isinstance(runtime, Runtime)
    policy = policy_from_settings(service.settings)
    async with session_scope(runtime.session_factory) as session:
        repository = SlaRepository.from_session(session)
        for observation in observations:
            await repository.apply(observation, policy)
