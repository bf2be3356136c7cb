"""SQL of the do-not-contact list (keyed hashes only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, literal_column, null, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from qualify.messages.state import BlockReason
from qualify.models import BlockedContact, SuppressedContact
from shared.db.repository import Repository
from shared.events.payloads import MessageChannel

# Built once (a message's send checks it): the blocked hashes among some, on one channel.
_BLOCKED = select(BlockedContact.contact_hash, BlockedContact.reason).where(
    BlockedContact.channel == bindparam("channel"),
    BlockedContact.contact_hash.in_(bindparam("hashes", expanding=True)),
)

# Built once (an operator's qualification with a consent checks it): any of some hashes listed.
_SUPPRESSED = cast(Table, SuppressedContact.__table__)
_ANY_LISTED = select(
    exists().where(_SUPPRESSED.c.contact_hash.in_(bindparam("hashes", expanding=True)))
)


@dataclass(frozen=True)
class ContactBlocks:
    """What the lists say of a few hashes: those on the do-not-contact list, and per channel the
    blocked ones with their reason."""

    suppressed: frozenset[str] = frozenset()
    blocked: dict[MessageChannel, dict[str, BlockReason]] = field(default_factory=dict)

    def blocked_on(self, channel: MessageChannel, hashes: Sequence[str]) -> BlockReason | None:
        found = self.blocked.get(channel, {})
        return next((found[digest] for digest in hashes if digest in found), None)


def contact_blocks_parts() -> list[Any]:
    """The two selects of ``_CONTACT_BLOCKS`` (rows: list, channel, contact_hash, reason), for
    a statement that runs them beside something else (``LeadRepository``)."""
    suppressed: Any = select(
        literal_column("'suppressed'").label("list"),
        null().label("channel"),
        SuppressedContact.contact_hash,
        null().label("reason"),
    ).where(SuppressedContact.contact_hash.in_(bindparam("suppressed", expanding=True)))
    blocked: Any = select(
        literal_column("'blocked'").label("list"),
        BlockedContact.channel,
        BlockedContact.contact_hash,
        BlockedContact.reason,
    ).where(BlockedContact.contact_hash.in_(bindparam("blocked", expanding=True)))
    return [suppressed, blocked]


# Both lists in one round trip (built once: expanding IN parameters).
_CONTACT_BLOCKS = union_all(*contact_blocks_parts())


def contact_blocks_of(rows: Iterable[Any]) -> ContactBlocks:
    """The ``ContactBlocks`` the rows of ``contact_blocks_parts`` say."""
    listed: set[str] = set()
    by_channel: dict[MessageChannel, dict[str, BlockReason]] = {}
    for row in rows:
        if row.list == "suppressed":
            listed.add(row.contact_hash)
        elif row.list == "blocked":
            by_channel.setdefault(row.channel, {})[row.contact_hash] = row.reason
    return ContactBlocks(frozenset(listed), by_channel)


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
        return bool(await self.session.scalar(_ANY_LISTED, {"hashes": list(hashes)}))

    async def contact_blocks(
        self, suppressed: Sequence[str], blocked: Sequence[str]
    ) -> ContactBlocks:
        """Which of ``suppressed`` are on the do-not-contact list and which of ``blocked`` are
        blocked on a channel: one statement for every check of a message or a lead."""
        if not suppressed and not blocked:
            return ContactBlocks()
        rows = (
            await self.session.execute(
                _CONTACT_BLOCKS, {"suppressed": list(suppressed), "blocked": list(blocked)}
            )
        ).all()
        return contact_blocks_of(rows)

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
            await self.session.execute(_BLOCKED, {"channel": channel, "hashes": list(hashes)})
        ).all()
        return {row.contact_hash: row.reason for row in rows}
