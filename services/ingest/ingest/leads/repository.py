"""SQL of the leads module.

Accepting a lead is the hot path of the JSON intake: its statements are built once (per dialect)
and executed with the rows as parameters, so no request pays for statement construction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from ingest.models import Lead
from shared.db.repository import Repository
from shared.outbox import Outbox, insert_into

_LEAD = cast(Table, Lead.__table__)


class LeadRepository(Repository):
    async def get(self, lead_id: str) -> Lead | None:
        return await self.session.get(Lead, lead_id)

    async def get_by_source_ref(self, source: str, source_ref: str) -> Lead | None:
        return await self.session.scalar(
            select(Lead).where(Lead.source == source, Lead.source_ref == source_ref)
        )

    async def insert_if_new(self, row: Mapping[str, Any]) -> bool:
        """Insert ``row`` unless its (source, source_ref) is known: one ``INSERT … ON CONFLICT DO
        NOTHING RETURNING`` decides (no read-before-write; concurrent replays cannot both win)."""
        return await self.session.scalar(_insert_new(self._dialect()), row) is not None

    async def insert_new(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Insert every row whose (source, source_ref) is new, in one multi-row statement;
        returns the ids inserted."""
        result = await self.session.execute(_insert_new(self._dialect()), rows)
        return set(result.scalars())

    async def ids_by_source_ref(
        self, refs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """Ids of the leads with these (source, source_ref) pairs."""
        rows = await self.session.execute(_IDS_BY_SOURCE_REF, {"refs": list(refs)})
        return {(source, source_ref): lead_id for source, source_ref, lead_id in rows}

    async def stage_events(self, outbox: Outbox, events: Sequence[Mapping[str, Any]]) -> None:
        """Outbox rows built beforehand (``shared.outbox.event_row``), in one statement."""
        await self.session.execute(insert_into(outbox.table), events)

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name


@cache
def _insert_new(dialect: str) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(_LEAD)
        .on_conflict_do_nothing(index_elements=["source", "source_ref"])
        .returning(_LEAD.c.id)
    )


_IDS_BY_SOURCE_REF = select(_LEAD.c.source, _LEAD.c.source_ref, _LEAD.c.id).where(
    tuple_(_LEAD.c.source, _LEAD.c.source_ref).in_(bindparam("refs", expanding=True))
)
