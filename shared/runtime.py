"""A service process's resources: settings, engine, session factory, bus, metrics, clock, outbox
and the service's own components. Built at start-up from settings (never at import time) and
closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.access.watch import access_watch_for
from shared.auth import ROLES, store_token
from shared.bus.factory import build_bus
from shared.bus.protocol import Bus
from shared.clock import Clock, in_utc, utcnow
from shared.db.engine import create_engine
from shared.db.infra import InfraTables
from shared.db.session import SessionFactory, make_session_factory, session_scope
from shared.metrics import ServiceMetrics
from shared.outage import is_outage
from shared.outbox import Outbox, event_source
from shared.redact import safe_error_text
from shared.settings import ServiceSettings
from shared.token_cache import TokenCache

log = structlog.get_logger(__name__)

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
ComponentT = TypeVar("ComponentT")


@dataclass
class Runtime(Generic[SettingsT]):
    settings: SettingsT
    infra: InfraTables
    engine: AsyncEngine
    session_factory: SessionFactory
    bus: Bus
    metrics: ServiceMetrics
    clock: Clock = utcnow
    tokens: TokenCache = field(default_factory=TokenCache)
    # Objects a service builds once per process (its policy, a group commit, …), by type.
    _components: dict[type[Any], Any] = field(default_factory=dict)

    @classmethod
    async def open(
        cls,
        settings: SettingsT,
        infra: InfraTables,
        metrics: ServiceMetrics,
        *,
        role: str,
        clock: Clock = utcnow,
    ) -> Runtime[SettingsT]:
        engine = create_engine(
            settings.resolved_database_url(),
            application_name=f"{settings.service_name}.{role}",
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        bus = build_bus(settings)
        await bus.start()
        # Tokens and people are cached while the database says they did not change (the watch
        # connects at the first request: a worker, which never authenticates, never connects it).
        tokens = TokenCache(
            watch=access_watch_for(
                settings.resolved_database_url(),
                application_name=f"{settings.service_name}.{role}.access",
            )
        )
        runtime = cls(
            settings,
            infra,
            engine,
            make_session_factory(engine),
            bus,
            metrics,
            in_utc(clock),
            tokens,
        )
        if settings.dev_token is not None:
            await runtime._store_dev_token(settings.dev_token.get_secret_value())
        return runtime

    @property
    def outbox(self) -> Outbox:
        """This service's outbox, bound to its event source."""
        return Outbox(self.infra.outbox_event, event_source(self.settings.service_name))

    def provide(self, component: object) -> None:
        """Register a per-process component, found again by its type."""
        self._components[type(component)] = component

    def component(self, kind: type[ComponentT]) -> ComponentT:
        found = self._components.get(kind)
        if not isinstance(found, kind):
            raise LookupError(f"no {kind.__name__} in this runtime")
        return found

    async def _store_dev_token(self, token: str) -> None:
        try:
            async with session_scope(self.session_factory) as session:
                await store_token(
                    session, self.infra.api_token, token=token, name="development", roles=ROLES
                )
        except IntegrityError:
            pass  # the service's other process stored it at the same moment
        except Exception as exc:
            # Unreachable, or not migrated yet (no api_token table): not a reason to crash.
            if not (is_outage(exc) or isinstance(exc, DBAPIError)):
                raise
            # Start anyway: /readyz reports the database, requests answer 503 until it is back.
            log.warning("runtime.dev_token_not_stored", error=safe_error_text(exc))

    async def close(self) -> None:
        await self.tokens.close()
        await self.bus.stop()
        await self.engine.dispose()
