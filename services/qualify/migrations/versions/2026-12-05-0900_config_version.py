"""config version

Revision ID: 5b0c9e3f7a21
Revises: c4e1a7d20b02
Create Date: 2026-12-05 09:00:00.000000

The worker reads the routing rules and the first answer's templates for every new lead; it now
caches them (qualify/config_cache.py) behind ``config_version``: one row, bumped by triggers on
``routing_rule`` and ``message_template`` in the writer's own statement (any insert, update or
delete, whoever writes: the API, a script, a test), so the change and the new version commit
together. The worker reads the version in the statement that inserts the lead and reloads what
it cached when it moved: a change committed by the API is seen by the next lead.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5b0c9e3f7a21"
down_revision: str | Sequence[str] | None = "c4e1a7d20b02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("routing_rule", "message_template")
_BUMP = "UPDATE config_version SET version = version + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_version")),
    )
    op.execute("INSERT INTO config_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION bump_config_version() RETURNS trigger LANGUAGE plpgsql"
            f" AS $$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_bumps_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
                f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version()"
            )
        return
    for table in _TABLES:
        for operation in ("insert", "update", "delete"):
            op.execute(
                f"CREATE TRIGGER {table}_{operation}_bumps_config AFTER {operation.upper()}"
                f" ON {table} BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_bumps_config ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_config_version()")
    else:
        for table in _TABLES:
            for operation in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{operation}_bumps_config")
    op.drop_table("config_version")
