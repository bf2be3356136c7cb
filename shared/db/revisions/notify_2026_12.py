"""A frozen migration step shared by the four services' "notify on work" revisions (issue 12,
December 2026): on PostgreSQL, ``notify_work()`` and a statement-level AFTER INSERT trigger per
table that runs ``pg_notify(<table>, '')`` in the writer's own statement, so the worker's loops
(which LISTEN, shared/db/wakeup.py) start at once. SQLite: nothing (the worker watches
``data_version``).

Frozen like any revision: a later change is a new step, never an edit here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op


def on_postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade(tables: Sequence[str]) -> None:
    """The function, then one insert trigger per table (PostgreSQL only)."""
    if not on_postgres():
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION notify_work() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_notify(TG_TABLE_NAME, ''); RETURN NULL; END $$"
    )
    for table in tables:
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION notify_work()"
        )


def downgrade(tables: Sequence[str]) -> None:
    """Drop what ``upgrade`` created, in reverse (PostgreSQL only)."""
    if not on_postgres():
        return
    for table in reversed(tables):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS notify_work()")
