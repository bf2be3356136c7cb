"""operators' work: queue due time, claims, contact attempts, qualifications

Revision ID: 16a304396feb
Revises: 8ef6087fc975
Create Date: 2026-11-27 03:41:22.261012

Existing queued leads are kept: they become open leads due at their receipt time (the earliest
possible due time, so they are served first) with no attempt yet.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "16a304396feb"
down_revision: str | Sequence[str] | None = "8ef6087fc975"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "contact_attempt",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("operator_id", sa.String(length=36), nullable=False),
        sa.Column("operator_name", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exemption", sa.String(length=32), nullable=True),
        sa.Column("consumer_request", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["queued_lead.lead_id"],
            name=op.f("fk_contact_attempt_lead_id_queued_lead"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_attempt")),
    )
    with op.batch_alter_table("contact_attempt", schema=None) as batch_op:
        batch_op.create_index("ix_contact_attempt_lead", ["lead_id", "attempted_at"], unique=False)
        batch_op.create_index(
            "ix_contact_attempt_operator", ["operator_id", "attempted_at"], unique=False
        )

    op.create_table(
        "qualification",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("operator_id", sa.String(length=36), nullable=False),
        sa.Column("operator_name", sa.String(length=120), nullable=False),
        sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["queued_lead.lead_id"],
            name=op.f("fk_qualification_lead_id_queued_lead"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_qualification")),
    )

    # New non-null columns: added nullable, back-filled, then made non-null.
    with op.batch_alter_table("queued_lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_open", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("site", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("claimed_by_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("first_attempt_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("attempt_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("unanswered_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("handled_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("disqualification_reason", sa.String(length=32), nullable=True)
        )
        batch_op.add_column(sa.Column("duplicate_of", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("disqualification_note", sa.Text(), nullable=True))

    queued_lead = sa.table(
        "queued_lead",
        sa.column("is_open", sa.Boolean()),
        sa.column("due_at", sa.DateTime(timezone=True)),
        sa.column("received_at", sa.DateTime(timezone=True)),
        sa.column("attempt_count", sa.Integer()),
        sa.column("unanswered_count", sa.Integer()),
    )
    op.execute(
        queued_lead.update().values(
            is_open=sa.true(),
            due_at=queued_lead.c.received_at,
            attempt_count=0,
            unanswered_count=0,
        )
    )

    with op.batch_alter_table("queued_lead", schema=None) as batch_op:
        batch_op.alter_column("is_open", existing_type=sa.Boolean(), nullable=False)
        batch_op.alter_column("due_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("attempt_count", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("unanswered_count", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_queued_lead_status_received")
        batch_op.create_index("ix_queued_lead_claimed_by", ["claimed_by"], unique=False)
        batch_op.create_index("ix_queued_lead_handled", ["handled_by", "closed_at"], unique=False)
        batch_op.create_index("ix_queued_lead_phone", ["phone"], unique=False)
        batch_op.create_index(
            "ix_queued_lead_queue", ["is_open", "due_at", "lead_id"], unique=False
        )
        batch_op.create_index(
            "ix_queued_lead_queue_source",
            ["is_open", "source", "due_at", "lead_id"],
            unique=False,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("queued_lead", schema=None) as batch_op:
        batch_op.drop_index("ix_queued_lead_queue_source")
        batch_op.drop_index("ix_queued_lead_queue")
        batch_op.drop_index("ix_queued_lead_phone")
        batch_op.drop_index("ix_queued_lead_handled")
        batch_op.drop_index("ix_queued_lead_claimed_by")
        batch_op.create_index(
            "ix_queued_lead_status_received", ["status", "received_at", "lead_id"], unique=False
        )
        batch_op.drop_column("disqualification_note")
        batch_op.drop_column("duplicate_of")
        batch_op.drop_column("disqualification_reason")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("handled_by")
        batch_op.drop_column("unanswered_count")
        batch_op.drop_column("attempt_count")
        batch_op.drop_column("first_attempt_by")
        batch_op.drop_column("first_attempt_at")
        batch_op.drop_column("claim_expires_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by_name")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("site")
        batch_op.drop_column("due_at")
        batch_op.drop_column("is_open")

    op.drop_table("qualification")
    with op.batch_alter_table("contact_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_attempt_operator")
        batch_op.drop_index("ix_contact_attempt_lead")

    op.drop_table("contact_attempt")
