"""SLA facts: the path of a lead (qualify or direct)

Revision ID: 5febbbae4b71
Revises: 7780cc6275aa
Create Date: 2026-12-03 09:00:00.000000

Existing facts keep no path (NULL: not known); a lead that had an operator's attempt, a
qualification or a disqualification took the operators' path, the only one there was, so they
get 'qualify'.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5febbbae4b71"
down_revision: str | Sequence[str] | None = "7780cc6275aa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sla_fact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("path", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_sla_fact_path_received_at", ["path", "received_at"], unique=False)
    op.execute(
        "UPDATE sla_fact SET path = 'qualify' WHERE first_attempt_at IS NOT NULL "
        "OR qualified_at IS NOT NULL OR disqualified_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("sla_fact", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_fact_path_received_at")
        batch_op.drop_column("path")
