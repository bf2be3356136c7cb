"""notify on work

Revision ID: c4e1a7d20b01
Revises: 4d4b93679bc5
Create Date: 2026-12-04 09:00:00.000000

Wake on work (shared/db/wakeup.py): on PostgreSQL a statement-level AFTER INSERT trigger on
outbox_event and facebook_fetch (a Lead Ads notification to fetch) runs
``pg_notify(<table>, '')`` inside the writer's own statement (no extra round trip for it; one
notification per table and transaction), and the worker's loops, which LISTEN, start at once
instead of polling. SQLite: nothing to do (the worker watches the file's ``data_version``).
"""

from collections.abc import Sequence

from shared.db.revisions import notify_2026_12

# revision identifiers, used by Alembic.
revision: str = "c4e1a7d20b01"
down_revision: str | Sequence[str] | None = "4d4b93679bc5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TABLES = ("outbox_event", "facebook_fetch")


def upgrade() -> None:
    notify_2026_12.upgrade(_TABLES)


def downgrade() -> None:
    notify_2026_12.downgrade(_TABLES)
