"""Command line of every service: ``python -m <service> api|worker|migrate|create-token``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from fastapi import FastAPI

from shared import event_loop
from shared.auth import new_token, parse_roles, store_token
from shared.clock import Clock, utcnow
from shared.db.engine import create_engine
from shared.db.infra import InfraTables
from shared.db.migrate import upgrade
from shared.db.session import make_session_factory, session_scope
from shared.heap import freeze_startup_heap
from shared.http_server import serve
from shared.runtime import SettingsT
from shared.settings import ServiceSettings
from shared.worker import ConsumerFactory, Worker

SettingsIn = TypeVar("SettingsIn", contravariant=True, bound=ServiceSettings)


class AppFactory(Protocol[SettingsIn]):
    """A service's ``create_app``: its settings, and the clock tests may move."""

    def __call__(self, settings: SettingsIn, *, clock: Clock = utcnow) -> FastAPI: ...


def run_service_cli(
    argv: Sequence[str] | None,
    *,
    settings_factory: type[SettingsT],
    create_app: AppFactory[SettingsT],
    infra: InfraTables,
    consumers: ConsumerFactory,
    migrations: Path,
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {settings_factory.service_name}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("api", help="serve the HTTP API")
    commands.add_parser("worker", help="run the outbox relay and the event consumers")
    commands.add_parser("migrate", help="upgrade the database to the latest migration")
    token = commands.add_parser("create-token", help="create an API token (printed once)")
    token.add_argument("--name", required=True)
    token.add_argument("--roles", required=True, help="comma-separated: operator,manager,…")
    token.add_argument("--token", help="store this token instead of a new one (shared tokens)")
    args = parser.parse_args(argv)
    settings = settings_factory()

    if args.command == "api":
        app = create_app(settings)
        freeze_startup_heap()
        serve(app, host=settings.http_host, port=settings.http_port)
    elif args.command == "worker":
        freeze_startup_heap()
        event_loop.run(Worker(settings, infra=infra, consumers=consumers).run_forever())
    elif args.command == "migrate":
        upgrade(migrations, settings.resolved_database_url())
    elif args.command == "create-token":
        try:
            roles = parse_roles(args.roles)
        except ValueError as exc:
            parser.error(str(exc))
        plain = args.token or new_token()
        event_loop.run(_store(settings, infra, plain, args.name, roles))
        sys.stdout.write(plain + "\n")
    return 0


async def _store(
    settings: ServiceSettings, infra: InfraTables, token: str, name: str, roles: frozenset[str]
) -> None:
    engine = create_engine(settings.resolved_database_url())
    try:
        async with session_scope(make_session_factory(engine)) as session:
            await store_token(session, infra.api_token, token=token, name=name, roles=roles)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class ServiceDefinition(Generic[SettingsT]):
    """Everything the entry point and the tests need to run one service."""

    settings_factory: type[SettingsT]
    create_app: AppFactory[SettingsT]
    infra: InfraTables
    consumers: ConsumerFactory
    migrations: Path

    @property
    def name(self) -> str:
        return self.settings_factory.service_name

    def main(self, argv: Sequence[str] | None = None) -> int:
        return run_service_cli(
            argv,
            settings_factory=self.settings_factory,
            create_app=self.create_app,
            infra=self.infra,
            consumers=self.consumers,
            migrations=self.migrations,
        )
