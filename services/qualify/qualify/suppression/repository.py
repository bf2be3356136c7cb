"""SQL of the do-not-contact list (keyed hashes only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from qualify.models import SuppressedContact
from shared.db.repository import Repository


class SuppressionRepository(Repository):
    async def add(self, hashes: Sequence[str], *, reason: str, at: datetime) -> None:
        """Record the hashes (a hash already listed stays as it is)."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await self.session.execute(
            insert(SuppressedContact)
            .values(
                [
                    {"contact_hash": digest, "reason": reason, "suppressed_at": at}
                    for digest in hashes
                ]
            )
            .on_conflict_do_nothing(index_elements=["contact_hash"])
        )

    async def any_listed(self, hashes: Sequence[str]) -> bool:
        count = await self.session.scalar(
            select(func.count())
            .select_from(SuppressedContact)
            .where(SuppressedContact.contact_hash.in_(hashes))
        )
        return bool(count)
