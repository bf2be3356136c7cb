"""Alembic environment of crm: the URL from the command's config, else from the settings."""

from alembic import context

from crm.models import metadata
from crm.settings import CrmSettings
from shared.db.migrate import run_migrations

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option("sqlalchemy.url", CrmSettings().resolved_database_url())
run_migrations(metadata)
