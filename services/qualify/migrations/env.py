"""Alembic environment of qualify: the URL from the command's config, else from the settings."""

from alembic import context

from qualify.models import metadata
from qualify.settings import QualifySettings
from shared.db.migrate import run_migrations

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option("sqlalchemy.url", QualifySettings().resolved_database_url())
run_migrations(metadata)
