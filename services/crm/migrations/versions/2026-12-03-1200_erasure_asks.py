"""Erasure requests remember when the services were last asked, and how many times

Revision ID: 3e8c1f0a9b27
Revises: 568ffb42d310
Create Date: 2026-12-03 11:00:00.000000

A request whose answers do not all come within ``CRM_ERASURE_REASK_AFTER_S`` is asked again of
the services that have not answered (crm/privacy/reask.py). Existing requests were asked once,
when they were requested: ``asked_at`` starts at ``requested_at``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "3e8c1f0a9b27"
down_revision: str | Sequence[str] | None = "568ffb42d310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("erasure_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("asked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("asks", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
    op.execute("UPDATE erasure_request SET asked_at = requested_at")
    with op.batch_alter_table("erasure_request", schema=None) as batch_op:
        batch_op.alter_column("asked_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index(
            "ix_erasure_request_open_asked", ["completed_at", "asked_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("erasure_request", schema=None) as batch_op:
        batch_op.drop_index("ix_erasure_request_open_asked")
        batch_op.drop_column("asks")
        batch_op.drop_column("asked_at")
