"""A frozen migration step shared by the four services' "people and tokens" revisions (issue 14,
December 2026): the copy of dispatch's people directory every service checks tokens and sign-ins
against (``access_person``), API tokens of people (``api_token.person_id``) and their expiry, and
``access_revision``: triggers move it whenever tokens or people change, and on PostgreSQL notify
``vo_access`` at commit, so each API process's token cache forgets what changed at once
(shared/access/watch.py).

Frozen like any revision: a later change of these tables is a new step, never an edit here (the
revisions that call this module must keep building the same schema).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def upgrade() -> None:
    """Create the access copy, the token columns and the change triggers."""
    op.create_table(
        "access_person",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("roles", sa.String(length=255), nullable=False),
        sa.Column("sites", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sso_key", sa.String(length=36), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_person")),
    )
    op.create_index(op.f("ix_access_person_sso_key"), "access_person", ["sso_key"], unique=False)
    op.create_table(
        "access_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_revision")),
    )
    op.execute("INSERT INTO access_revision (id, revision) VALUES (1, 0)")
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("person_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(op.f("ix_api_token_person_id"), ["person_id"], unique=False)
    _create_change_triggers()


def downgrade() -> None:
    """Drop what ``upgrade`` created, in reverse."""
    _drop_change_triggers()
    with op.batch_alter_table("api_token") as batch:
        batch.drop_index(op.f("ix_api_token_person_id"))
        batch.drop_column("expires_at")
        batch.drop_column("person_id")
    op.drop_table("access_revision")
    op.drop_index(op.f("ix_access_person_sso_key"), table_name="access_person")
    op.drop_table("access_person")


_WATCHED = ("api_token", "access_person")


def _create_change_triggers() -> None:
    """Every change of the two tables moves ``access_revision`` (and, on PostgreSQL, notifies
    ``vo_access`` at commit): what the API processes' token caches watch."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION access_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " UPDATE access_revision SET revision = revision + 1 WHERE id = 1;"
            " PERFORM pg_notify('vo_access', ''); RETURN NULL; END $$"
        )
        for table in _WATCHED:
            op.execute(
                f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION access_changed()"
            )
        return
    # SQLite: row triggers (no statement-level ones). A later batch migration that recreates
    # one of these tables drops its triggers: such a revision must create them again.
    for table in _WATCHED:
        for operation in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_after_{operation.lower()} AFTER {operation} ON {table}"
                " BEGIN UPDATE access_revision SET revision = revision + 1 WHERE id = 1; END"
            )


def _drop_change_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS access_changed()")
        return
    for table in _WATCHED:
        for operation in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_after_{operation}")
