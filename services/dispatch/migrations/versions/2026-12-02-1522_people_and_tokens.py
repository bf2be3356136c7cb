"""people and tokens

Revision ID: 2728d49b360a
Revises: 49db2cf1c876
Create Date: 2026-12-02 15:22:21.056893

Issue 14, people and sign-on: the copy of dispatch's people directory every service checks tokens
and sign-ins against (``access_person``), API tokens of people (``api_token.person_id``) and
their expiry, and ``access_revision``: triggers move it whenever tokens or people change, and on
PostgreSQL notify ``vo_access`` at commit, so each API process's token cache forgets what
changed at once (shared/access/watch.py).
Dispatch also gets the directory's master table of people (``person``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.revisions import access_2026_12

# revision identifiers, used by Alembic.
revision: str = "2728d49b360a"
down_revision: str | Sequence[str] | None = "49db2cf1c876"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    access_2026_12.upgrade()
    op.create_table(
        "person",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("sites", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sso_issuer", sa.String(length=255), nullable=True),
        sa.Column("sso_subject", sa.String(length=255), nullable=True),
        sa.Column("seller_id", sa.String(length=36), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["seller.id"], name=op.f("fk_person_seller_id_seller")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("sso_issuer", "sso_subject", name="uq_person_sso"),
    )
    op.create_index("ix_person_seller", "person", ["seller_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_person_seller", table_name="person")
    op.drop_table("person")
    access_2026_12.downgrade()
