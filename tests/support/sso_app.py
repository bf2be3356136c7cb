"""A minimal service built with the shared app factory, for the sign-on tests of
``require_roles``: real middleware, problem handlers, runtime and API-token table (SQLite), one
route per role. It depends on no service package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
from fastapi import APIRouter, Depends
from pydantic_settings import SettingsConfigDict
from sqlalchemy import MetaData

from shared.api import AUTH_PROBLEMS, require_roles
from shared.app import LifespanHook, create_service_app
from shared.auth import Principal
from shared.clock import Clock, utcnow
from shared.db.engine import create_engine
from shared.db.infra import add_infra_tables
from shared.settings import ServiceSettings

DEV_TOKEN = "vo_sso-test-dev-token"


class SsoTestSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SSOTEST_", extra="ignore", frozen=True, env_ignore_empty=True
    )
    service_name: ClassVar[str] = "ssotest"


_metadata = MetaData()
INFRA = add_infra_tables(_metadata)

Operator = Annotated[Principal, Depends(require_roles("operator"))]
Manager = Annotated[Principal, Depends(require_roles("manager"))]

router = APIRouter(prefix="/v1", responses=AUTH_PROBLEMS)


def _described(principal: Principal) -> dict[str, Any]:
    return {
        "actor": principal.token_id,
        "roles": sorted(principal.roles),
        "sites": None if principal.sites is None else sorted(principal.sites),
        "via": principal.via,
    }


@router.get("/operator-only")
async def operator_only(principal: Operator) -> dict[str, Any]:
    return _described(principal)


@router.get("/manager-only")
async def manager_only(principal: Manager) -> dict[str, Any]:
    return _described(principal)


def sso_settings(tmp_path: Path, **values: Any) -> SsoTestSettings:
    values.setdefault("database_url", f"sqlite+aiosqlite:///{tmp_path / 'ssotest.db'}")
    values.setdefault("embedded_bus_path", tmp_path / "bus.db")
    values.setdefault("dev_token", DEV_TOKEN)
    return SsoTestSettings(**values)


@asynccontextmanager
async def sso_client(
    settings: SsoTestSettings,
    *,
    clock: Clock = utcnow,
    lifespan_hooks: Sequence[LifespanHook] = (),
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app (no Authorization header: each request sets its own)."""
    engine = create_engine(settings.resolved_database_url())
    async with engine.begin() as connection:
        await connection.run_sync(_metadata.create_all)
    await engine.dispose()
    app = create_service_app(
        settings,
        infra=INFRA,
        routers=[router],
        title="sso test",
        description="require_roles with API tokens and OIDC access tokens",
        clock=clock,
        lifespan_hooks=lifespan_hooks,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ssotest.test"
        ) as client,
    ):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
