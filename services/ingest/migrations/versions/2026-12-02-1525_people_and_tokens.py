"""people and tokens

Revision ID: 4d4b93679bc5
Revises: 3898ebf4768c
Create Date: 2026-12-02 15:21:43.611632

Issue 14, people and sign-on: the copy of dispatch's people directory every service checks tokens
and sign-ins against (``access_person``), API tokens of people (``api_token.person_id``) and
their expiry, and ``access_revision``: triggers move it whenever tokens or people change, and on
PostgreSQL notify ``vo_access`` at commit, so each API process's token cache forgets what
changed at once (shared/access/watch.py).
"""

from collections.abc import Sequence

from shared.db.revisions import access_2026_12

# revision identifiers, used by Alembic.
revision: str = "4d4b93679bc5"
down_revision: str | Sequence[str] | None = "3898ebf4768c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    access_2026_12.upgrade()


def downgrade() -> None:
    access_2026_12.downgrade()
