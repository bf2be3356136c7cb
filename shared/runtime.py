"""A service process's resources: engine, session factory, bus, metrics. Built at start-up from
settings (never at import time) and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import ROLES, store_token
from shared.bus.factory import build_bus
from shared.bus.protocol import Bus
from shared.db.engine import create_engine
from shared.db.infra import InfraTables
from shared.db.session import SessionFactory, make_session_factory, session_scope
from shared.metrics import ServiceMetrics
from shared.redact import safe_error_text
from shared.settings import ServiceSettings
from shared.token_cache import TokenCache

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    settings: ServiceSettings
    infra: InfraTables
    engine: AsyncEngine
    session_factory: SessionFactory
    bus: Bus
    metrics: ServiceMetrics
    tokens: TokenCache = field(default_factory=TokenCache)

    @classmethod
    async def open(
        cls, settings: ServiceSettings, infra: InfraTables, metrics: ServiceMetrics, *, role: str
    ) -> Runtime:
        engine = create_engine(
            settings.resolved_database_url(), application_name=f"{settings.service_name}.{role}"
        )
        bus = build_bus(settings)
        await bus.start()
        runtime = cls(settings, infra, engine, make_session_factory(engine), bus, metrics)
        if settings.dev_token is not None:
            await runtime._store_dev_token(settings.dev_token.get_secret_value())
        return runtime

    async def _store_dev_token(self, token: str) -> None:
        try:
            async with session_scope(self.session_factory) as session:
                await store_token(
                    session, self.infra.api_token, token=token, name="development", roles=ROLES
                )
        except IntegrityError:
            pass  # the service's other process stored it at the same moment
        except (OperationalError, InterfaceError, OSError) as exc:
            # Start anyway: /readyz reports the database, requests answer 503 until it is back.
            log.warning("runtime.dev_token_not_stored", error=safe_error_text(exc))

    async def close(self) -> None:
        await self.bus.stop()
        await self.engine.dispose()
