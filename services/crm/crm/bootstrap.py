"""The crm service's composition root: settings, app, tables, consumers, migrations."""

from __future__ import annotations

from crm import MIGRATIONS_DIR
from crm.app import create_app
from crm.models import infra
from crm.settings import CrmSettings
from crm.worker import consumers
from shared.cli import ServiceDefinition

SERVICE = ServiceDefinition(
    settings_factory=CrmSettings,
    create_app=create_app,
    infra=infra,
    consumers=consumers,
    migrations=MIGRATIONS_DIR,
)
