"""SQL of the do-not-contact list (keyed hashes only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from qualify.messages.state import BlockReason
from qualify.models import BlockedContact, SuppressedContact
from shared.db.repository import Repository
from shared.events.payloads import MessageChannel


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

    # --- one channel blocked for one contact (STOP, unsubscribe, hard bounce) ---------------

    async def block(
        self, hashes: Sequence[str], *, channel: MessageChannel, reason: BlockReason, at: datetime
    ) -> None:
        """Block ``channel`` for these hashes (a contact blocked already stays as it is)."""
        if not hashes:
            return
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await self.session.execute(
            insert(BlockedContact)
            .values(
                [
                    {"contact_hash": digest, "channel": channel, "reason": reason, "blocked_at": at}
                    for digest in hashes
                ]
            )
            .on_conflict_do_nothing(index_elements=["contact_hash", "channel"])
        )

    async def blocked(
        self, hashes: Sequence[str], channel: MessageChannel
    ) -> dict[str, BlockReason]:
        """The hashes among ``hashes`` blocked on ``channel``, with the reason."""
        if not hashes:
            return {}
        rows = (
            await self.session.execute(
                select(BlockedContact.contact_hash, BlockedContact.reason).where(
                    BlockedContact.channel == channel,
                    BlockedContact.contact_hash.in_(list(hashes)),
                )
            )
        ).all()
        return {row.contact_hash: row.reason for row in rows}
