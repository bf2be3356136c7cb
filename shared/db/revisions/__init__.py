"""Migration steps shared by several services' Alembic revisions, frozen by date."""
