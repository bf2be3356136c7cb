"""The dispatch service's composition root: settings, app, tables, consumers, migrations."""

from __future__ import annotations

from dispatch import MIGRATIONS_DIR
from dispatch.app import create_app
from dispatch.models import infra
from dispatch.settings import DispatchSettings
from dispatch.worker import consumers
from shared.cli import ServiceDefinition

SERVICE = ServiceDefinition(
    settings_factory=DispatchSettings,
    create_app=create_app,
    infra=infra,
    consumers=consumers,
    migrations=MIGRATIONS_DIR,
)
