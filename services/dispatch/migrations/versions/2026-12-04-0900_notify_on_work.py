"""notify on work

Revision ID: c4e1a7d20b03
Revises: 2728d49b360a
Create Date: 2026-12-04 09:00:00.000000

Wake on work (shared/db/wakeup.py): on PostgreSQL a statement-level AFTER INSERT trigger on
outbox_event, webhook_delivery and timer runs ``pg_notify(<table>, '')`` inside the writer's own
statement (no extra round trip for it; one notification per table and transaction), and the
worker's loops, which LISTEN, start at once instead of polling. A webhook delivery set back to
pending (a manager's replay) notifies too (row-level, only on that change), so the sender does
not wait for its fallback poll. SQLite: nothing to do (the worker watches the file's
``data_version``).
"""

from collections.abc import Sequence

from alembic import op

from shared.db.revisions import notify_2026_12

# revision identifiers, used by Alembic.
revision: str = "c4e1a7d20b03"
down_revision: str | Sequence[str] | None = "2728d49b360a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TABLES = ("outbox_event", "webhook_delivery", "timer")


def upgrade() -> None:
    notify_2026_12.upgrade(_TABLES)
    if notify_2026_12.on_postgres():
        # A held or failed delivery set back to pending is work again.
        op.execute(
            "CREATE TRIGGER webhook_delivery_pending_notify AFTER UPDATE OF status"
            " ON webhook_delivery FOR EACH ROW"
            " WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM 'pending')"
            " EXECUTE FUNCTION notify_work()"
        )


def downgrade() -> None:
    if notify_2026_12.on_postgres():
        op.execute("DROP TRIGGER IF EXISTS webhook_delivery_pending_notify ON webhook_delivery")
    notify_2026_12.downgrade(_TABLES)
