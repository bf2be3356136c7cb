"""Alembic environment of ingest: the URL from the command's config, else from the settings."""

from alembic import context

from ingest.models import metadata
from ingest.settings import IngestSettings
from shared.db.migrate import run_migrations

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option("sqlalchemy.url", IngestSettings().resolved_database_url())
run_migrations(metadata)
