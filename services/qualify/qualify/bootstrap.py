"""The qualify service's composition root: settings, app, tables, consumers, migrations."""

from __future__ import annotations

from qualify import MIGRATIONS_DIR
from qualify.app import create_app
from qualify.models import infra
from qualify.settings import QualifySettings
from qualify.worker import consumers
from shared.cli import ServiceDefinition

SERVICE = ServiceDefinition(
    settings_factory=QualifySettings,
    create_app=create_app,
    infra=infra,
    consumers=consumers,
    migrations=MIGRATIONS_DIR,
)
