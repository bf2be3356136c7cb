"""The ingest service's composition root: settings, app, tables, consumers, migrations."""

from __future__ import annotations

from ingest import MIGRATIONS_DIR
from ingest.app import create_app
from ingest.models import infra
from ingest.settings import IngestSettings
from ingest.worker import consumers
from shared.cli import ServiceDefinition

SERVICE = ServiceDefinition(
    settings_factory=IngestSettings,
    create_app=create_app,
    infra=infra,
    consumers=consumers,
    migrations=MIGRATIONS_DIR,
)
