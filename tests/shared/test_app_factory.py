"""The shared app factory: no redirect built from the Host header, hooks around the runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from shared.app import create_service_app
from shared.db.infra import InfraTables
from shared.runtime import Runtime
from tests.support.harness import SERVICES, run_app, settings_for


async def test_a_trailing_slash_is_a_404_problem_not_a_redirect(tmp_path: Path) -> None:
    settings = settings_for("qualify", database_url=f"sqlite+aiosqlite:///{tmp_path}/q.db")
    async with run_app(settings) as service:
        response = await service.client.get(
            "/v1/queue/", headers={"Host": "evil.example"}, follow_redirects=False
        )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.headers["content-type"] == "application/problem+json"


async def test_lifespan_hooks_run_inside_the_runtime_and_provide_components(
    tmp_path: Path,
) -> None:
    settings = settings_for("crm", database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db")
    infra: InfraTables = SERVICES["crm"].infra
    events: list[str] = []

    class Marker:
        pass

    @asynccontextmanager
    async def hook(runtime: Runtime[Any]) -> AsyncIterator[None]:
        runtime.provide(Marker())
        events.append("enter")
        yield
        events.append("exit")

    app = create_service_app(
        settings,
        infra=infra,
        routers=[],
        title="t",
        description="t",
        lifespan_hooks=[hook],
        configure_logs=False,
    )
    async with app.router.lifespan_context(app):
        assert isinstance(app.state.runtime.component(Marker), Marker)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            assert (await client.get("/healthz")).status_code == 200
    assert events == ["enter", "exit"]
