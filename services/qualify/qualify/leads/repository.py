"""SQL of leads: load (locked for a change), add, attempts, qualification, per-consumer
history."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    String,
    Table,
    any_,
    bindparam,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from qualify.models import (
    BlockedContact,
    ConfigVersion,
    ContactAttempt,
    Qualification,
    QueuedLead,
    SuppressedContact,
)
from qualify.problems import LeadNotFound
from qualify.suppression.repository import (
    ContactBlocks,
    SuppressionRepository,
    contact_blocks_of,
)
from shared.db.instances import QuickConstructor
from shared.db.prepared import Prepared
from shared.db.repository import Repository


@cache
def _insert_new(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (lead_id) DO NOTHING`` of a lead, built once per dialect and run
    with the row as parameters (a new lead per event: no read before, no ORM flush)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(cast(Table, QueuedLead.__table__)).on_conflict_do_nothing(
        index_elements=["lead_id"]
    )


@cache
def _insert_new_reading_version(dialect: str) -> Any:
    """``_insert_new`` returning, when it inserted, the ``config_version`` its snapshot sees
    (NULL without that row): the worker's cache of rules and templates checks it at no extra
    round trip."""
    version = cast(Table, ConfigVersion.__table__)
    current = select(version.c.version).where(version.c.id == 1).scalar_subquery()
    return _insert_new(dialect).returning(current.label("config_version"))


def _hashes(name: str) -> Any:
    """``= ANY(:name)`` of one array parameter: the PostgreSQL spelling of an ``IN`` list whose
    SQL does not change with its length (an expanding ``IN`` is rendered per execution, so its
    statement could not be prepared)."""
    return any_(bindparam(name, type_=ARRAY(String())))


@cache
def _insert_new_checking_contacts() -> Any:
    """PostgreSQL: ``_insert_new_reading_version`` and ``SuppressionRepository.contact_blocks``
    as one statement, ``WITH new_lead AS (INSERT … RETURNING lead_id) SELECT 'lead', …,
    version FROM new_lead UNION ALL <the lists>``: a row ``list = 'lead'`` when it inserted (with
    the version), then the listed and blocked hashes. Run with the lead's columns and the
    ``suppressed`` and ``blocked`` hashes (arrays) as parameters."""
    table = cast(Table, QueuedLead.__table__)
    values = {column.key: bindparam(column.key, type_=column.type) for column in table.columns}
    new_lead = (
        pg_insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["lead_id"])
        .returning(table.c.lead_id)
        .cte("new_lead")
    )
    version = cast(Table, ConfigVersion.__table__)
    current = select(version.c.version).where(version.c.id == 1).scalar_subquery()
    inserted = select(
        literal_column("'lead'").label("list"),
        null().label("channel"),
        null().label("contact_hash"),
        null().label("reason"),
        current.label("version"),
    ).select_from(new_lead)
    # The selects of ``contact_blocks_parts``, their IN lists as arrays.
    suppressed: Any = select(
        literal_column("'suppressed'").label("list"),
        null().label("channel"),
        SuppressedContact.contact_hash,
        null().label("reason"),
        null().label("version"),
    ).where(SuppressedContact.contact_hash == _hashes("suppressed"))
    blocked: Any = select(
        literal_column("'blocked'").label("list"),
        BlockedContact.channel,
        BlockedContact.contact_hash,
        BlockedContact.reason,
        null().label("version"),
    ).where(BlockedContact.contact_hash == _hashes("blocked"))
    return union_all(inserted, suppressed, blocked)


@cache
def _insert_new_checking_contacts_prepared(dialect: Dialect) -> Prepared:
    """``_insert_new_checking_contacts`` compiled once (each new lead runs it): its arguments
    are the lead's columns and the two arrays of hashes, by position."""
    return Prepared.compile(_insert_new_checking_contacts(), dialect)


@cache
def _new_lead_defaults() -> dict[str, Any]:
    """Each column's value in a new lead that does not set it (its scalar default, else NULL)."""
    defaults: dict[str, Any] = {}
    for column in cast(Table, QueuedLead.__table__).columns:
        default = column.default
        if isinstance(default, ScalarElementColumnDefault):
            defaults[column.key] = default.arg
        else:
            defaults[column.key] = None
    return defaults


_NEW_LEAD = QuickConstructor(QueuedLead)


def new_queued_lead(**values: Any) -> QueuedLead:
    """``QueuedLead(**values)`` without an attribute event each (~18 us per new lead): what an
    insert reads (``add_new_*``, a flush) is its state, and ``_loaded`` resets its history
    anyway (``shared.db.instances``)."""
    return _NEW_LEAD.new(**values)


class LeadRepository(Repository):
    @property
    def is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def get(self, lead_id: str) -> QueuedLead | None:
        return await self.session.get(QueuedLead, lead_id)

    async def reload(self, lead_id: str) -> QueuedLead | None:
        """The lead as the database has it now (after a bulk UPDATE the session did not see)."""
        return await self.session.get(QueuedLead, lead_id, populate_existing=True)

    def add(self, lead: QueuedLead) -> None:
        self.session.add(lead)

    async def add_new_reading_version(self, lead: QueuedLead) -> tuple[bool, int | None]:
        """Insert ``lead`` (every column set) unless one with its id exists (a replay): True
        when this call inserted it, and the ``config_version`` its statement saw (None: a
        replay, or no version row). The inserted lead then belongs to the session as if it had
        been read, so later changes to it are written as usual."""
        values = lead.__dict__
        row = {name: values.get(name, default) for name, default in _new_lead_defaults().items()}
        statement = _insert_new_reading_version(self.session.get_bind().dialect.name)
        found = (await self.session.execute(statement, row)).first()
        if found is None:
            return False, None
        self._loaded(lead, row)
        version = found[0]
        return True, None if version is None else int(version)

    async def add_new_checking_contacts(
        self, lead: QueuedLead, *, suppressed: Sequence[str], blocked: Sequence[str]
    ) -> tuple[bool, int | None, ContactBlocks]:
        """``add_new_reading_version``, and what the lists say of the hashes (as
        ``SuppressionRepository.contact_blocks``): one statement on PostgreSQL (a
        data-modifying CTE), two elsewhere. Nothing of the lists on a replay."""
        if not self.is_postgres:
            inserted, version = await self.add_new_reading_version(lead)
            if not inserted:
                return False, None, ContactBlocks()
            lists = SuppressionRepository.from_session(self.session)
            return True, version, await lists.contact_blocks(suppressed, blocked)
        values = lead.__dict__
        row = {name: values.get(name, default) for name, default in _new_lead_defaults().items()}
        prepared = _insert_new_checking_contacts_prepared(self.session.get_bind().dialect)
        parameters = {**row, "suppressed": list(suppressed), "blocked": list(blocked)}
        result = await prepared.execute(self.session, prepared.arguments_of(parameters))
        rows = result.all()
        found = next((found for found in rows if found.list == "lead"), None)
        if found is None:
            return False, None, ContactBlocks()
        self._loaded(lead, row)
        version = None if found.version is None else int(found.version)
        return True, version, contact_blocks_of(rows)

    def _loaded(self, lead: QueuedLead, row: dict[str, Any]) -> None:
        """``lead`` as a read would have it: the columns it did not set take the row's values
        straight into its state (as loading does: no attribute events, no history), then it
        is the session's, unchanged."""
        values = lead.__dict__
        for name, value in row.items():
            if name not in values:
                values[name] = value
        make_transient_to_detached(lead)
        self.session.add(lead)

    def add_attempt(self, attempt: ContactAttempt) -> None:
        self.session.add(attempt)

    def add_qualification(self, qualification: Qualification) -> None:
        self.session.add(qualification)

    async def get_for_update(self, lead_id: str) -> QueuedLead:
        """The lead, row-locked until the end of the transaction (PostgreSQL; SQLite serialises
        writers anyway); a 404 problem when unknown."""
        lead = await self.session.get(
            QueuedLead, lead_id, with_for_update=True, populate_existing=True
        )
        if lead is None:
            raise LeadNotFound()
        return lead

    async def lock_consumer(self, phone: str) -> None:
        """Serialise the rule checks of one consumer across leads (PostgreSQL)."""
        if self.is_postgres:
            key = zlib.crc32(f"consumer:{phone}".encode())
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def attempts(self, lead_id: str) -> Sequence[ContactAttempt]:
        return (
            await self.session.scalars(
                select(ContactAttempt)
                .where(ContactAttempt.lead_id == lead_id)
                .order_by(ContactAttempt.attempted_at, ContactAttempt.id)
            )
        ).all()

    async def qualification(self, lead_id: str) -> Qualification | None:
        return await self.session.get(Qualification, lead_id)

    async def consumer_phone_history(
        self, phone: str, since: datetime
    ) -> tuple[list[datetime], list[datetime]]:
        """(phone calls since ``since``, every refusal) of one consumer, across all leads."""
        rows = (
            await self.session.execute(
                select(ContactAttempt.channel, ContactAttempt.outcome, ContactAttempt.attempted_at)
                .join(QueuedLead, QueuedLead.lead_id == ContactAttempt.lead_id)
                .where(QueuedLead.phone == phone)
            )
        ).all()
        calls = [
            row.attempted_at for row in rows if row.channel == "phone" and row.attempted_at > since
        ]
        refusals = [row.attempted_at for row in rows if row.outcome == "refused"]
        return calls, refusals
