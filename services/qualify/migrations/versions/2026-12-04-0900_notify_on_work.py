"""notify on work

Revision ID: c4e1a7d20b02
Revises: 13663d8e8d3d
Create Date: 2026-12-04 09:00:00.000000

Wake on work (shared/db/wakeup.py): on PostgreSQL a statement-level AFTER INSERT trigger on
outbox_event and outgoing_message runs ``pg_notify(<table>, '')`` inside the writer's own
statement (no extra round trip for it; one notification per table and transaction), and the
worker's loops, which LISTEN, start at once instead of polling: the relay, and the sender for an
operator's message queued by the API. SQLite: nothing to do (the worker watches the file's
``data_version``).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c4e1a7d20b02"
down_revision: str | Sequence[str] | None = "13663d8e8d3d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION notify_work() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_notify(TG_TABLE_NAME, ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_event_notify AFTER INSERT ON outbox_event"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_work()"
    )
    op.execute(
        "CREATE TRIGGER outgoing_message_notify AFTER INSERT ON outgoing_message"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_work()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outgoing_message_notify ON outgoing_message")
    op.execute("DROP TRIGGER IF EXISTS outbox_event_notify ON outbox_event")
    op.execute("DROP FUNCTION IF EXISTS notify_work()")
