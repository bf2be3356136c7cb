"""outbox ids never reused

Revision ID: 9d1b175562c1
Revises: 20ea59d82796
Create Date: 2026-12-02 14:00:00.000000

On SQLite the outbox's ``id`` was a plain rowid, which hands the largest id out again once that
row is deleted: a relay still holding the deleted row could then delete the new event under the
same id, unpublished. AUTOINCREMENT never reuses an id. PostgreSQL sequences never did: nothing
to do there.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "9d1b175562c1"
down_revision: str | Sequence[str] | None = "20ea59d82796"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Recreate the SQLite outbox table with AUTOINCREMENT (rows and indexes kept)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "outbox_event", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "outbox_event", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
