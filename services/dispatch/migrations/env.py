"""Alembic environment of dispatch: the URL from the command's config, else from the settings."""

from alembic import context

from dispatch.models import metadata
from dispatch.settings import DispatchSettings
from shared.db.migrate import run_migrations

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option("sqlalchemy.url", DispatchSettings().resolved_database_url())
run_migrations(metadata)
