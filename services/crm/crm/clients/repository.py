"""SQL of clients and their timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    event,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, joinedload

from crm.clients.receipts import Receipt, resolve
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
_LEAD_ENTRY_COLUMNS = ("id", "client_id", "lead_id", "kind", "occurred_at", "source", "details")


def _entry_param(name: str) -> Any:
    """The bound value of the entry's column ``name`` (``entry_<name>``: an UPDATE in the same
    statement would take a parameter named as one of its columns for a value to set)."""
    return bindparam(f"entry_{name}", type_=_ENTRY.c[name].type)


def _insert_lead_entry(*, returning: bool = True) -> Insert:
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
    statement = insert(_ENTRY).from_select(_LEAD_ENTRY_COLUMNS, found)
    return statement.returning(_ENTRY.c.client_id) if returning else statement


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
_INSERT_LEAD_ENTRIES = _insert_lead_entry(returning=False)  # sent with many parameter sets
_INSERT_CLIENT_AND_ENTRY_POSTGRES = _insert_client_and_entry_postgres()
_INSERT_LEAD_ENTRY_TOUCHING_POSTGRES = _insert_lead_entry_touching_postgres()
_TOUCH_CLIENT = (
    update(_CLIENT)
    .where(_CLIENT.c.id == bindparam("client_key"), _CLIENT.c.last_contact_at < bindparam("at"))
    .values(last_contact_at=bindparam("at"))
)
# The client holding the entry ``entry_id`` (inserted or recorded before): its last own contact.
_TOUCH_CLIENT_OF_ENTRY = (
    update(_CLIENT)
    .where(
        _CLIENT.c.id.in_(select(_ENTRY.c.client_id).where(_ENTRY.c.id == bindparam("entry_id"))),
        _CLIENT.c.last_contact_at < bindparam("at"),
    )
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


_ENTRIES_RECORDED = select(_ENTRY.c.id).where(
    _ENTRY.c.id.in_(bindparam("entry_ids", expanding=True))
)
_CLIENTS_OF_KEYS = select(*(_CLIENT.c[name] for name in StoredClient._fields)).where(
    or_(
        _CLIENT.c.phone.in_(bindparam("phones", expanding=True)),
        _CLIENT.c.email.in_(bindparam("emails", expanding=True)),
    )
)
_MERGED_COLUMNS = ("phone", "email", "first_name", "last_name", "full_name", "last_contact_at")


def _oldest_match(
    clients: Sequence[StoredClient], phone: str | None, email: str | None
) -> StoredClient | None:
    """What ``_match_query`` finds among ``clients``: the oldest with the phone, else the oldest
    with the e-mail."""
    for key, value in (("phone", phone), ("email", email)):
        matches = [client for client in clients if value and getattr(client, key) == value]
        if matches:
            return min(matches, key=lambda client: client.created_at)
    return None


def _write_held_receipts(session: Session) -> None:
    """The receipts held for the commit resolved and written, before the later steps' entries
    (they find their client through the receipt's entry). One: as ``resolve_client`` does (one
    statement reads the match, one writes the client and entry on PostgreSQL). More: one
    statement reads the entries recorded already, one the clients of their phones and e-mails;
    they are resolved in order in memory (a receipt may match a client an earlier one made or
    completed), then the new clients are one INSERT, the completed ones one UPDATE, the entries
    one INSERT (each sent with a parameter set per row: one round trip)."""
    receipts: list[Receipt] = session.info.pop(_HELD_RECEIPTS, None) or []
    if not receipts:
        return
    on_postgres = session.get_bind().dialect.name == "postgresql"
    if len(receipts) == 1:
        (receipt,) = receipts
        phone, email = receipt.phone, receipt.email
        params = {"entry_id": receipt.entry["id"], "phone": phone, "email": email}
        row = session.execute(_seen_and_match_query(bool(phone), bool(email)), params).one()
        if row[0]:
            return
        found = row[1:] if len(row) > 1 and row[1] is not None else None
        resolved = resolve(receipt, StoredClient._make(found) if found is not None else None)
        client = resolved.new_client
        if client is not None and on_postgres:
            values = {f"client_{name}": client[name] for name in _CLIENT_COLUMNS}
            values |= {
                f"entry_{name}": value
                for name, value in resolved.entry.items()
                if name != "client_id"
            }
            session.execute(_INSERT_CLIENT_AND_ENTRY_POSTGRES, values)
            return
        if client is not None:
            session.execute(_INSERT_CLIENT, client)
        elif resolved.changes:
            session.execute(
                _UPDATE_CLIENT, {**resolved.changes, "client_key": resolved.entry["client_id"]}
            )
        session.execute(_INSERT_ENTRY, resolved.entry)
        return
    recorded = set(
        session.execute(
            _ENTRIES_RECORDED, {"entry_ids": [receipt.entry["id"] for receipt in receipts]}
        ).scalars()
    )
    keys = {
        "phones": sorted({receipt.phone for receipt in receipts if receipt.phone}),
        "emails": sorted({receipt.email for receipt in receipts if receipt.email}),
    }
    rows = session.execute(_CLIENTS_OF_KEYS, keys).all() if any(keys.values()) else []
    clients: dict[str, StoredClient] = {row[0]: StoredClient._make(row) for row in rows}
    created: dict[str, dict[str, Any]] = {}
    completed: set[str] = set()
    entries: list[dict[str, Any]] = []
    for receipt in receipts:
        if receipt.entry["id"] in recorded:
            continue
        recorded.add(receipt.entry["id"])  # the same receipt twice in the transaction
        found = _oldest_match(list(clients.values()), receipt.phone, receipt.email)
        resolved = resolve(receipt, found)
        entries.append(resolved.entry)
        if resolved.new_client is not None:
            client = resolved.new_client
            created[client["id"]] = client
            clients[client["id"]] = StoredClient(**{k: client[k] for k in StoredClient._fields})
        elif resolved.changes:
            client_id = resolved.entry["client_id"]
            clients[client_id] = clients[client_id]._replace(**resolved.changes)
            if client_id in created:
                created[client_id].update(resolved.changes)
            else:
                completed.add(client_id)
    if created:
        session.execute(_INSERT_CLIENT, list(created.values()))
    if completed:
        session.execute(
            _UPDATE_CLIENT,
            [
                {
                    **{name: getattr(clients[client_id], name) for name in _MERGED_COLUMNS},
                    "client_key": client_id,
                }
                for client_id in sorted(completed)
            ],
        )
    if entries:
        session.execute(_INSERT_ENTRY, entries)


@dataclass
class _HeldEntry:
    values: dict[str, Any]  # every column but ``client_id``
    own_contact: bool


_HELD_ENTRIES = "crm.clients.held_entries"
_HELD_RECEIPTS = "crm.clients.held_receipts"


def _held_entries(session: AsyncSession) -> dict[str, _HeldEntry]:
    """The entries this session's transaction holds for its commit, by id; created on demand,
    with the hooks that write them before the commit and drop them on a rollback."""
    held: dict[str, _HeldEntry] | None = session.info.get(_HELD_ENTRIES)
    if held is None:
        held = session.info[_HELD_ENTRIES] = {}
        sync_session = session.sync_session
        event.listen(sync_session, "before_commit", _write_held_entries, once=True)
        event.listen(sync_session, "after_rollback", _drop_held_entries, once=True)
    return held


def _write_held_entries(session: Session) -> None:
    """Runs inside the commit (the async session's greenlet), before its COMMIT: a failure fails
    the commit. One entry on PostgreSQL: one statement (its client's last contact in a CTE);
    more: every entry in one statement of many parameter sets (one round trip), then the last
    contacts likewise."""
    _write_held_receipts(session)
    held: dict[str, _HeldEntry] = session.info.pop(_HELD_ENTRIES, None) or {}
    if not held:
        return
    entries = [
        {f"entry_{name}": value for name, value in entry.values.items()} for entry in held.values()
    ]
    if len(held) == 1 and session.get_bind().dialect.name == "postgresql":
        (entry,) = held.values()
        touching = entry.own_contact
        session.execute(
            _INSERT_LEAD_ENTRY_TOUCHING_POSTGRES if touching else _INSERT_LEAD_ENTRIES, entries[0]
        )
        return
    session.execute(_INSERT_LEAD_ENTRIES, entries)
    touches = [
        {"entry_id": entry.values["id"], "at": entry.values["occurred_at"]}
        for entry in held.values()
        if entry.own_contact
    ]
    if touches:
        session.execute(_TOUCH_CLIENT_OF_ENTRY, touches)


def _drop_held_entries(session: Session) -> None:
    session.info.pop(_HELD_ENTRIES, None)
    session.info.pop(_HELD_RECEIPTS, None)


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

    async def insert_entry(self, values: Mapping[str, Any]) -> None:
        await self.session.execute(_INSERT_ENTRY, values)

    def hold_receipt(self, receipt: Receipt) -> None:
        """Resolve the receipt's person when the transaction commits, with its other receipts
        (see ``_write_held_receipts``), before the later steps' entries."""
        _held_entries(self.session)  # the commit hook that writes them
        self.session.info.setdefault(_HELD_RECEIPTS, []).append(receipt)

    def hold_lead_entry(self, values: Mapping[str, Any], *, own_contact: bool) -> None:
        """Insert an entry of ``values`` (every column but ``client_id``) when the transaction
        commits, on the timeline of the client who holds the lead (none: nothing inserted),
        unless it is recorded already; for the prospect's ``own_contact``, the client's last
        contact moves to ``occurred_at`` unless it is later already. The entries a transaction
        holds are written together: a polled batch's steps cost one or two statements, not one
        or two each (see ``_write_held_entries``)."""
        held = _held_entries(self.session)
        held.setdefault(values["id"], _HeldEntry(dict(values), own_contact))

    @property
    def on_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def entry_details_of_lead(self, lead_id: str, *, kind: str) -> list[EntryDetails]:
        """The lead's entries of this kind (those held for the commit too)."""
        params = {"lead_id": lead_id, "kind": kind}
        rows = (await self.session.execute(_ENTRIES_OF_LEAD, params)).all()
        found = [EntryDetails._make(row) for row in rows]
        for held in self.session.info.get(_HELD_ENTRIES, {}).values():
            values = held.values
            if values["lead_id"] == lead_id and values["kind"] == kind:
                found.append(EntryDetails(values["id"], values["details"]))
        return found

    async def set_entry_details(self, entry_id: str, details: dict[str, Any]) -> None:
        held = self.session.info.get(_HELD_ENTRIES, {}).get(entry_id)
        if held is not None:  # not written yet: it will be with these details
            held.values["details"] = details
            return
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
        """The client whose timeline holds this lead (the receipts held for the commit are
        written first: a lead received in this very transaction has its client)."""
        if self.session.info.get(_HELD_RECEIPTS):
            await self.session.run_sync(_write_held_receipts)
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
