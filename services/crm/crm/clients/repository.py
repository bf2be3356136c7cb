"""SQL of clients and their timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    CursorResult,
    Delete,
    Insert,
    Select,
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.orm import joinedload

from crm.models import Client, TimelineEntry
from shared.db.repository import Repository

# The statements of the event handlers (a few per event, every event): Core, built once, with
# their parameters given to ``execute``. A statement built per call pays its coercions and a new
# cache key each time; ORM objects added to the session pay a unit-of-work flush.
_CLIENT = cast(Table, Client.__table__)
_ENTRY = cast(Table, TimelineEntry.__table__)
_INSERT_CLIENT = insert(_CLIENT)
_UPDATE_CLIENT = update(_CLIENT).where(_CLIENT.c.id == bindparam("client_key"))
_INSERT_ENTRY = insert(_ENTRY)
_LEAD_CLIENT = (
    select(
        _CLIENT.c.id,
        _CLIENT.c.last_contact_at,
        exists().where(_ENTRY.c.id == bindparam("entry_id")).label("seen"),
    )
    .join_from(_CLIENT, _ENTRY, _ENTRY.c.client_id == _CLIENT.c.id)
    .where(_ENTRY.c.lead_id == bindparam("lead_id"))
    .limit(1)
)

_LEAD_ENTRY_COLUMNS = ("id", "client_id", "lead_id", "kind", "occurred_at", "source", "details")


def _entry_param(name: str) -> Any:
    """The bound value of the entry's column ``name`` (``entry_<name>``: an UPDATE in the same
    statement would take a parameter named as one of its columns for a value to set)."""
    return bindparam(f"entry_{name}", type_=_ENTRY.c[name].type)


def _insert_lead_entry() -> Insert:
    """A later step's entry, its client found through the lead's other entries, unless the entry
    is recorded already: one statement (the lookup, then the insert, were two round trips)."""
    lead_entry, recorded = _ENTRY.alias("lead_entry"), _ENTRY.alias("recorded")
    values = [
        _CLIENT.c.id if name == "client_id" else _entry_param(name) for name in _LEAD_ENTRY_COLUMNS
    ]
    found = (
        select(*values)
        .join_from(_CLIENT, lead_entry, lead_entry.c.client_id == _CLIENT.c.id)
        .where(
            lead_entry.c.lead_id == _entry_param("lead_id"),
            ~exists().where(recorded.c.id == _entry_param("id")),
        )
        .limit(1)
    )
    return insert(_ENTRY).from_select(_LEAD_ENTRY_COLUMNS, found).returning(_ENTRY.c.client_id)


def _insert_lead_entry_touching_postgres() -> Select[Any]:
    """PostgreSQL: ``_insert_lead_entry`` and, in the same statement (a data-modifying CTE), the
    client's last own contact moved to the step's instant unless it is later already."""
    inserted = _insert_lead_entry().cte("inserted")
    touched = (
        update(_CLIENT)
        .where(
            _CLIENT.c.id.in_(select(inserted.c.client_id)),
            _CLIENT.c.last_contact_at < _entry_param("occurred_at"),
        )
        .values(last_contact_at=_entry_param("occurred_at"))
        .cte("touched")
    )
    return select(inserted.c.client_id).add_cte(touched)


_CLIENT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "full_name",
    "phone",
    "email",
    "created_at",
    "last_contact_at",
)


def _insert_client_and_entry_postgres() -> Insert:
    """PostgreSQL: a new client (``client_*`` parameters) and the entry of its first lead
    (``entry_*``) in one statement: the client's insert is a data-modifying CTE."""
    new_client = (
        insert(_CLIENT)
        .values(
            {
                name: bindparam(f"client_{name}", type_=_CLIENT.c[name].type)
                for name in _CLIENT_COLUMNS
            }
        )
        .returning(_CLIENT.c.id)
        .cte("new_client")
    )
    values = [
        new_client.c.id if name == "client_id" else _entry_param(name)
        for name in _LEAD_ENTRY_COLUMNS
    ]
    return insert(_ENTRY).from_select(_LEAD_ENTRY_COLUMNS, select(*values))


_INSERT_LEAD_ENTRY = _insert_lead_entry()
_INSERT_CLIENT_AND_ENTRY_POSTGRES = _insert_client_and_entry_postgres()
_INSERT_LEAD_ENTRY_TOUCHING_POSTGRES = _insert_lead_entry_touching_postgres()
_TOUCH_CLIENT = (
    update(_CLIENT)
    .where(_CLIENT.c.id == bindparam("client_key"), _CLIENT.c.last_contact_at < bindparam("at"))
    .values(last_contact_at=bindparam("at"))
)
_ENTRIES_OF_LEAD = select(_ENTRY.c.id, _ENTRY.c.details).where(
    _ENTRY.c.lead_id == bindparam("lead_id"), _ENTRY.c.kind == bindparam("kind")
)
_SET_ENTRY_DETAILS = (
    update(_ENTRY)
    .where(_ENTRY.c.id == bindparam("entry_key"))
    .values(details=bindparam("new_details"))
)


class StoredClient(NamedTuple):
    """A client's row, as the event handlers read it."""

    id: str
    first_name: str | None
    last_name: str | None
    full_name: str | None
    phone: str | None
    email: str | None
    created_at: datetime
    last_contact_at: datetime


class LeadClient(NamedTuple):
    id: str
    last_contact_at: datetime
    seen: bool  # the event's entry is recorded already


class EntryDetails(NamedTuple):
    id: str
    details: dict[str, Any]


@cache
def _match_query(by_phone: bool, by_email: bool) -> Select[Any]:
    """The oldest client with the phone, else the oldest with the e-mail (see ``match``)."""
    c = _CLIENT.c
    keys = [c.phone == bindparam("phone")] if by_phone else []
    keys += [c.email == bindparam("email")] if by_email else []
    phone_first = [case((c.phone == bindparam("phone"), 0), else_=1)] if by_phone else []
    columns = (c[name] for name in StoredClient._fields)
    return select(*columns).where(or_(*keys)).order_by(*phone_first, c.created_at).limit(1)


@cache
def _seen_and_match_query(by_phone: bool, by_email: bool) -> Select[Any]:
    """One row: whether the entry is recorded already, then the match's columns (NULLs when
    there is none)."""
    seen = exists().where(_ENTRY.c.id == bindparam("entry_id")).label("seen")
    probe = select(seen).subquery("probe")
    if not (by_phone or by_email):
        return select(probe.c.seen)
    match = _match_query(by_phone, by_email).subquery("matched")
    return select(probe.c.seen, *match.c).select_from(probe.outerjoin(match, true()))


class ClientRepository(Repository):
    # -- the event handlers' statements (Core rows, no ORM objects) ----------------------------

    async def seen_and_match(
        self, entry_id: str, phone: str | None, email: str | None
    ) -> tuple[bool, StoredClient | None]:
        """Whether the entry ``entry_id`` is recorded already, and the oldest client with this
        phone, else the oldest with this e-mail: one statement (a new person, the common case,
        costs one round trip, not one per key)."""
        query = _seen_and_match_query(bool(phone), bool(email))
        params = {"entry_id": entry_id, "phone": phone, "email": email}
        row = (await self.session.execute(query, params)).one()
        found = row[1:] if len(row) > 1 and row[1] is not None else None
        return bool(row[0]), StoredClient._make(found) if found is not None else None

    async def insert_client(self, values: Mapping[str, Any]) -> None:
        await self.session.execute(_INSERT_CLIENT, values)

    async def insert_client_and_entry(
        self, client: Mapping[str, Any], entry: Mapping[str, Any]
    ) -> None:
        """A new client and the entry of its first lead (``entry`` without ``client_id``): one
        statement on PostgreSQL, two elsewhere (SQLite has no data-modifying CTE)."""
        if self.on_postgres:
            params = {f"client_{name}": client[name] for name in _CLIENT_COLUMNS}
            params |= {f"entry_{name}": value for name, value in entry.items()}
            await self.session.execute(_INSERT_CLIENT_AND_ENTRY_POSTGRES, params)
            return
        await self.insert_client(client)
        await self.insert_entry({**entry, "client_id": client["id"]})

    async def update_client(self, client_id: str, changes: Mapping[str, Any]) -> None:
        await self.session.execute(_UPDATE_CLIENT, {**changes, "client_key": client_id})

    async def touch_client(self, client_id: str, at: datetime) -> None:
        """The client's last own contact becomes ``at`` unless it is later already."""
        await self.session.execute(_TOUCH_CLIENT, {"client_key": client_id, "at": at})

    async def lead_client(self, lead_id: str, entry_id: str) -> LeadClient | None:
        """The client whose timeline holds this lead (``id``, ``last_contact_at``) and whether
        the entry ``entry_id`` is recorded already (``seen``): one statement."""
        params = {"lead_id": lead_id, "entry_id": entry_id}
        row = (await self.session.execute(_LEAD_CLIENT, params)).first()
        return LeadClient._make(row) if row is not None else None

    async def insert_entry(self, values: Mapping[str, Any]) -> None:
        await self.session.execute(_INSERT_ENTRY, values)

    async def insert_lead_entry(self, values: Mapping[str, Any], *, own_contact: bool) -> bool:
        """Insert an entry of ``values`` (every column but ``client_id``) on the timeline of the
        client who holds the lead and, for the prospect's ``own_contact``, move the client's last
        contact to ``occurred_at`` unless it is later already. False when nothing was inserted
        (the entry is recorded already, or no client holds the lead: see ``lead_client``)."""
        params = {f"entry_{name}": value for name, value in values.items()}
        if own_contact and self.on_postgres:  # one statement: a data-modifying CTE
            result = await self.session.execute(_INSERT_LEAD_ENTRY_TOUCHING_POSTGRES, params)
            return result.first() is not None
        client_id = (await self.session.execute(_INSERT_LEAD_ENTRY, params)).scalar_one_or_none()
        if client_id is None:
            return False
        if own_contact:
            await self.touch_client(str(client_id), values["occurred_at"])
        return True

    @property
    def on_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def entry_details_of_lead(self, lead_id: str, *, kind: str) -> list[EntryDetails]:
        """The lead's entries of this kind."""
        params = {"lead_id": lead_id, "kind": kind}
        rows = (await self.session.execute(_ENTRIES_OF_LEAD, params)).all()
        return [EntryDetails._make(row) for row in rows]

    async def set_entry_details(self, entry_id: str, details: dict[str, Any]) -> None:
        params = {"entry_key": entry_id, "new_details": details}
        await self.session.execute(_SET_ENTRY_DETAILS, params)

    # -- the API's and the jobs' ------------------------------------------------------------

    async def find_by_phone(self, phone: str) -> Client | None:
        return await self.session.scalar(
            select(Client).where(Client.phone == phone).order_by(Client.created_at).limit(1)
        )

    async def find_by_email(self, email: str) -> Client | None:
        return await self.session.scalar(
            select(Client).where(Client.email == email).order_by(Client.created_at).limit(1)
        )

    async def client_of_lead(self, lead_id: str) -> Client | None:
        """The client whose timeline holds this lead."""
        return await self.session.scalar(
            select(Client)
            .join(TimelineEntry, TimelineEntry.client_id == Client.id)
            .where(TimelineEntry.lead_id == lead_id)
            .limit(1)
        )

    async def get_for_update(self, client_id: str) -> Client | None:
        """The client, locked until the transaction ends (two corrections do not interleave)."""
        return await self.session.scalar(
            select(Client).where(Client.id == client_id).with_for_update()
        )

    async def timeline_of(self, client_id: str) -> list[TimelineEntry]:
        return list(
            (
                await self.session.scalars(
                    select(TimelineEntry)
                    .where(TimelineEntry.client_id == client_id)
                    .order_by(TimelineEntry.occurred_at, TimelineEntry.id)
                )
            ).all()
        )

    async def get_with_timeline(self, client_id: str) -> Client | None:
        # One statement (a join, not a second SELECT): the client and its timeline come from
        # one snapshot, never a row older than the entries beside it.
        result = await self.session.scalars(
            select(Client).where(Client.id == client_id).options(joinedload(Client.timeline))
        )
        return result.unique().one_or_none()

    async def search(
        self,
        *,
        phone: str | None,
        email: str | None,
        name: str | None = None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[Client]:
        query = select(Client).options(joinedload(Client.timeline))  # one snapshot, as above
        if phone is not None:
            query = query.where(Client.phone == phone)
        if email is not None:
            query = query.where(Client.email == email)
        if name is not None:
            query = query.where(
                func.lower(Client.full_name).contains(name.lower(), autoescape=True)
            )
        if after is not None:
            query = query.where(tuple_(Client.created_at, Client.id) > tuple_(*after))
        query = query.order_by(Client.created_at, Client.id).limit(limit)
        return (await self.session.scalars(query)).unique().all()

    async def last_contact_before(self, cutoff: datetime, *, after: str, limit: int) -> list[str]:
        """Ids of the clients whose last own contact is older than ``cutoff``, in id order after
        ``after`` (keyset pages: memory stays flat whatever the number of clients)."""
        query = (
            select(Client.id)
            .where(Client.last_contact_at < cutoff, Client.id > after)
            .order_by(Client.id)
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def delete_timeline_of_leads(self, lead_ids: Sequence[str]) -> int:
        return await self._delete(delete(TimelineEntry).where(TimelineEntry.lead_id.in_(lead_ids)))

    async def delete(self, client_id: str) -> int:
        return await self._delete(delete(Client).where(Client.id == client_id))

    async def _delete(self, statement: Delete) -> int:
        result = cast(CursorResult[Any], await self.session.execute(statement))
        return int(result.rowcount or 0)
