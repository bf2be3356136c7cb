"""contact schedule, call-backs, reopening, direct routing

Revision ID: 6d224d3ac6e3
Revises: a98e66d49add
Create Date: 2026-12-03 09:00:00.000000

The queue is ordered by (queue_rank, due_at, lead_id): call-backs (rank 0) before ordinary leads
(rank 1, what every existing lead becomes). Existing leads keep their due time, are available at
once (``available_at`` NULL) and took the operators' path (``routing_path`` 'qualify'). The new
``routing_rule`` table starts empty: every source follows QUALIFY_ROUTING_DEFAULT_PATH.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "6d224d3ac6e3"
down_revision: str | Sequence[str] | None = "a98e66d49add"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_rule",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("intent", sa.String(length=16), nullable=True),
        sa.Column("ad_ref_prefixes", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_routing_rule")),
    )
    with op.batch_alter_table("queued_lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("available_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("queue_rank", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("callback_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("callback_timezone", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("callback_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("callback_set_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("callback_note", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "routing_path", sa.String(length=16), server_default="qualify", nullable=False
            )
        )
        batch_op.add_column(sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reopened_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("reopen_reason", sa.String(length=32), nullable=True))
        batch_op.drop_index("ix_queued_lead_queue")
        batch_op.drop_index("ix_queued_lead_queue_source")
        batch_op.create_index(
            "ix_queued_lead_queue_rank",
            ["is_open", "queue_rank", "due_at", "lead_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_queued_lead_queue_rank_source",
            ["is_open", "source", "queue_rank", "due_at", "lead_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_queued_lead_callback_by", ["callback_by", "callback_at"], unique=False
        )
    # The last attempt of existing leads, so the schedule does not take an older one for it.
    op.execute(
        "UPDATE queued_lead SET last_attempt_at = (SELECT max(attempted_at) FROM "
        "contact_attempt WHERE contact_attempt.lead_id = queued_lead.lead_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("queued_lead", schema=None) as batch_op:
        batch_op.drop_index("ix_queued_lead_callback_by")
        batch_op.drop_index("ix_queued_lead_queue_rank_source")
        batch_op.drop_index("ix_queued_lead_queue_rank")
        batch_op.create_index(
            "ix_queued_lead_queue_source", ["is_open", "source", "due_at", "lead_id"], unique=False
        )
        batch_op.create_index(
            "ix_queued_lead_queue", ["is_open", "due_at", "lead_id"], unique=False
        )
        for column in (
            "reopen_reason",
            "reopened_by",
            "reopened_at",
            "routing_path",
            "callback_note",
            "callback_set_at",
            "callback_by",
            "callback_timezone",
            "callback_at",
            "last_attempt_at",
            "queue_rank",
            "available_at",
        ):
            batch_op.drop_column(column)
    op.drop_table("routing_rule")
