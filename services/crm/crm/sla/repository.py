"""SQL of the SLA facts: apply an observation to a lead's row, and the managers' aggregates.

Every aggregate is computed by the database over an indexed ``received_at`` range (plus the
dimension filters): percentiles come from a per-minute histogram (GROUP BY), never from rows
loaded into memory. The histogram of whole business minutes has at most a few thousand rows per
stage and group, whatever the number of leads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Float,
    String,
    and_,
    bindparam,
    case,
    cast,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from crm.sla.calendars import CalendarSpec, calendar_key
from crm.sla.models import sla_calendar, sla_fact
from crm.sla.observations import Observation
from crm.sla.percentiles import PERCENTILES
from crm.sla.stages import (
    FUNNEL,
    OPERATOR_STAGES,
    OUTCOMES,
    STAGES,
    SlaPolicy,
    Stage,
    StageMeasure,
    milestone_column,
)
from shared.business_time import BusinessCalendar
from shared.db.repository import Repository
from shared.events.payloads import FULL_WEB_POOL

GROUP_COLUMNS: dict[str, str] = {
    "source": "source",
    "site": "site",
    "seller": "seller_id",
    "operator": "operator_id",
    "path": "path",
}


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime
    source: str | None = None
    site: str | None = None
    seller: str | None = None
    operator: str | None = None
    path: str | None = None

    @property
    def dimensions(self) -> dict[str, str]:
        """The dimension filters given, by name (the keys of ``GROUP_COLUMNS``)."""
        values = {
            "source": self.source,
            "site": self.site,
            "seller": self.seller,
            "operator": self.operator,
            "path": self.path,
        }
        return {name: value for name, value in values.items() if value is not None}

    def where(self) -> list[ColumnElement[bool]]:
        c = sla_fact.c
        clauses: list[ColumnElement[bool]] = [c.received_at >= self.start, c.received_at < self.end]
        clauses += [c[GROUP_COLUMNS[name]] == value for name, value in self.dimensions.items()]
        return clauses


@dataclass(frozen=True)
class StageHistogram:
    """Per group: whole business minutes → count, and how many ended past the target."""

    minutes: dict[int, int]
    late: int


@dataclass(frozen=True)
class Breach:
    lead_id: str
    stage: str
    received_at: datetime
    source: str | None
    site: str | None
    seller_id: str | None
    operator_id: str | None
    started_at: datetime
    ended_at: datetime | None
    due_at: datetime | None
    business_s: int | None
    wall_s: int | None
    channel: str | None


@dataclass(frozen=True)
class Applied:
    """What an observation did to a lead's row."""

    ended: list[tuple[Stage, StageMeasure, str | None]]  # stages that ended just now
    newly_set: frozenset[str]  # columns that had no value before and have one now
    row: dict[str, Any]  # the row as it is now


@dataclass(frozen=True)
class Outcomes:
    won: int
    closed: int
    priced: int  # sales whose price the seller gave
    revenue_eur: int  # sum of those prices

    @classmethod
    def of_row(cls, row: Mapping[Any, Any]) -> Outcomes:
        """From the columns of ``_outcome_columns``."""
        return cls(
            int(row["won"]), int(row["closed"]), int(row["priced"]), int(row["revenue"] or 0)
        )


def _outcome_columns() -> list[Any]:
    """Sales, closed leads and the revenue of the priced sales (read by ``Outcomes.of_row``)."""
    c = sla_fact.c
    return [
        func.count(c.won_at).label("won"),
        func.count(c.closed_at).label("closed"),
        func.count(c.sale_price_eur).label("priced"),
        func.sum(c.sale_price_eur).label("revenue"),
    ]


SERIES_TIMEZONE = "Europe/Paris"
SERIES_PERCENTILES: tuple[float, ...] = (0.5, 0.9)


def offset_segments(start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The UTC offsets of Europe/Paris over ``[start, end)``: ``(until, seconds)`` segments, the
    last one open-ended. Offsets change at whole UTC hours (DST), so hourly steps find them."""
    zone = ZoneInfo(SERIES_TIMEZONE)

    def offset(moment: datetime) -> int:
        delta = moment.astimezone(zone).utcoffset()
        assert delta is not None
        return int(delta.total_seconds())

    moment = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    current = offset(moment)
    segments: list[tuple[datetime, int]] = []
    while moment < end:
        moment += timedelta(hours=1)
        following = offset(moment)
        if following != current:
            segments.append((moment, current))
            current = following
    segments.append((end, current))
    return segments


def _group_expression(group_by: str | None, *, collation: str | None = None) -> ColumnElement[Any]:
    """The grouping key ``g`` (``"all"`` without grouping), compared in ``collation`` if given."""
    if group_by is None:
        return literal("all").label("g")
    column: ColumnElement[Any] = sla_fact.c[GROUP_COLUMNS[group_by]]
    return (column if collation is None else column.collate(collation)).label("g")


# The per-event statements, built once (a statement built per call costs its coercions and a
# new cache key each time): parameters are passed to ``execute``.
_FACT_NAMES: tuple[str, ...] = tuple(column.name for column in sla_fact.columns)
_NO_FACT: dict[str, Any] = dict.fromkeys(_FACT_NAMES)
_SPEC_NAMES = ("pool", "timezone", "opening_hours", "holiday_subdivision", "observe_holidays")


def _merged_calendar_key() -> ColumnElement[Any]:
    """``calendar_key`` of the row merged with the observation's ``site`` and ``channel``."""
    c = sla_fact.c
    channel = func.coalesce(bindparam("channel", type_=String()), c.channel)
    site = func.coalesce(bindparam("site", type_=String()), c.site)
    return case((channel == "full_web", literal(FULL_WEB_POOL)), else_=site)


_FACT_WITH_CALENDAR = (
    select(
        *sla_fact.columns,
        _merged_calendar_key().label("calendar__key"),
        *(sla_calendar.c[name].label(f"calendar__{name}") for name in _SPEC_NAMES),
        sla_calendar.c.closures.label("calendar__closures"),
    )
    .select_from(
        sla_fact.outerjoin(sla_calendar, sla_calendar.c.calendar_id == _merged_calendar_key())
    )
    .where(sla_fact.c.lead_id == bindparam("lead_id"))
    .with_for_update(of=sla_fact)  # the fact row only (SQLite: no row locks, one writer)
)
_JOINED_KEY = len(_FACT_NAMES)
_INSERT_FACT = insert(sla_fact)
_UPDATE_FACT = update(sla_fact).where(sla_fact.c.lead_id == bindparam("fact_lead_id"))
# A new row unless the lead has one (RETURNING: a row when inserted). Dialect-specific SQL: the
# same ON CONFLICT DO NOTHING, from each dialect's own ``insert``.
_INSERT_NEW_FACT_POSTGRES = (
    postgresql.insert(sla_fact).on_conflict_do_nothing().returning(sla_fact.c.lead_id)
)
_INSERT_NEW_FACT_SQLITE = (
    sqlite.insert(sla_fact).on_conflict_do_nothing().returning(sla_fact.c.lead_id)
)
_CALENDAR = select(sla_calendar).where(sla_calendar.c.calendar_id == bindparam("calendar_id"))
_CALENDARS = select(sla_calendar).where(
    sla_calendar.c.calendar_id.in_(bindparam("calendar_ids", expanding=True))
)


def _facts_with_calendars_postgres() -> Any:
    """PostgreSQL: ``_FACT_WITH_CALENDAR`` for many leads in one statement: the leads, with the
    site and channel their pending observations end with, as arrays (``unnest``); a row per lead
    that has one, locked, in lead order."""
    strings = ARRAY(String())
    leads = (
        func.unnest(
            cast(bindparam("lead_ids"), strings),
            cast(bindparam("sites"), strings),
            cast(bindparam("channels"), strings),
        )
        .table_valued("lead_id", "site", "channel")
        .render_derived(name="observed")
    )
    c = sla_fact.c
    channel = func.coalesce(leads.c.channel, c.channel)
    key = case(
        (channel == "full_web", literal(FULL_WEB_POOL)), else_=func.coalesce(leads.c.site, c.site)
    )
    return (
        select(
            *sla_fact.columns,
            key.label("calendar__key"),
            *(sla_calendar.c[name].label(f"calendar__{name}") for name in _SPEC_NAMES),
            sla_calendar.c.closures.label("calendar__closures"),
        )
        .select_from(
            sla_fact.join(leads, leads.c.lead_id == c.lead_id).outerjoin(
                sla_calendar, sla_calendar.c.calendar_id == key
            )
        )
        .order_by(c.lead_id)
        .with_for_update(of=sla_fact)
    )


_FACTS_WITH_CALENDARS_POSTGRES = _facts_with_calendars_postgres()


def _joined_calendar(found: Any) -> BusinessCalendar | None:
    """The calendar joined to the fact row by ``_FACT_WITH_CALENDAR`` (None: not known)."""
    joined = found[_JOINED_KEY + 1 :]
    if joined[0] is None:  # pool is NOT NULL: no calendar of that key
        return None
    return _spec(dict(zip((*_SPEC_NAMES, "closures"), joined, strict=True))).calendar()


def _opens_fact(observation: Observation) -> bool:
    """A receipt alone: the lead's first event (they are keyed by lead id, so in order), whose
    row is new but for a replay."""
    return observation.milestones.keys() == {"received"}


def _merged(before: Mapping[str, Any], observation: Observation) -> dict[str, Any]:
    """The row ``before`` (``_NO_FACT``: none yet) with the observation's milestones and keys,
    its outcome and closing instant, before the stages are measured."""
    state = dict(before)
    state["lead_id"] = observation.lead_id
    for milestone, instant in observation.milestones.items():
        column = milestone_column(milestone)
        current = state[column]
        state[column] = instant if current is None else min(current, instant)
    disqualified_at, reopened_at = state["disqualified_at"], observation.reopened_at
    if reopened_at is not None and disqualified_at is not None and disqualified_at <= reopened_at:
        # Reopened: no longer disqualified (a later disqualification counts anew).
        state["disqualified_at"] = None
    # The qualification's path decides; operators' events say "qualify" until then.
    if observation.path is not None and (state["path"] is None or observation.path == "direct"):
        state["path"] = observation.path
    state["source"] = state["source"] or observation.source
    state["operator_id"] = state["operator_id"] or observation.operator_id
    state["site"] = observation.site or state["site"]
    state["seller_id"] = observation.seller_id or state["seller_id"]
    state["channel"] = observation.channel or state["channel"]
    if observation.sale_price_eur is not None:
        state["sale_price_eur"] = observation.sale_price_eur
    reached = [name for name in OUTCOMES if state[milestone_column(name)]]
    state["closed_at"] = min((state[milestone_column(name)] for name in reached), default=None)
    state["outcome"] = reached[0] if reached else None
    return state


def _measure(
    state: dict[str, Any],
    before: Mapping[str, Any],
    policy: SlaPolicy,
    site_calendar: BusinessCalendar | None,
) -> list[tuple[Stage, StageMeasure, str | None]]:
    """Measure every stage into ``state``; the stages that ended just now."""
    state["calendar_provisional"] = site_calendar is None
    ended: list[tuple[Stage, StageMeasure, str | None]] = []
    for stage in STAGES:
        measure = policy.measure(
            stage, state[stage.start_column], state[stage.end_column], site_calendar
        )
        if state["path"] == "direct" and stage.name in OPERATOR_STAGES:
            measure = StageMeasure(None, None, None, None)  # no operator on this path
        state[stage.business_column] = measure.business_s
        state[stage.wall_column] = measure.wall_s
        state[stage.due_column] = measure.due_at
        state[stage.risk_column] = measure.risk_at
        if before[stage.business_column] is None and measure.business_s is not None:
            ended.append((stage, measure, state["source"]))
    return ended


def _new_row(state: Mapping[str, Any]) -> dict[str, Any]:
    """Only the columns with a value: most are NULL on a new row (fewer parameters)."""
    return {key: value for key, value in state.items() if value is not None}


@dataclass
class _Held:
    """A lead's row as this transaction leaves it (``state``) and as it is stored (``stored``,
    None: no row yet, ``state`` is then ``_NO_FACT`` until merged). A row read or inserted is
    locked until the transaction ends: nobody else changes it meanwhile."""

    stored: dict[str, Any] | None
    state: dict[str, Any]
    calendar_known: bool = False
    calendar_key: str | None = None  # whose calendar ``calendar`` is (when known)
    calendar: BusinessCalendar | None = None


@dataclass(frozen=True)
class _Pending:
    """An observation waiting for the transaction's next write (``SlaRepository.defer``)."""

    observation: Observation
    policy: SlaPolicy
    now: datetime
    done: Callable[[Applied], None]


@dataclass
class _Holding:
    """What a transaction holds for its commit: the observations not applied yet, the leads'
    rows, and the calendars it read (a batch's leads of one site share one read)."""

    pending: list[_Pending] = field(default_factory=list)
    facts: dict[str, _Held] = field(default_factory=dict)
    calendars: dict[str | None, BusinessCalendar | None] = field(default_factory=dict)


def _settle(held: _Held, state: dict[str, Any], policy: SlaPolicy, *, now: datetime) -> Applied:
    """Measure ``state`` (``held.state`` merged with an observation) on ``held.calendar``; it is
    then the row as this transaction leaves it."""
    before = held.state
    ended = _measure(state, before, policy, held.calendar)
    changed = [key for key, value in state.items() if before.get(key) != value]
    if not changed:
        return Applied([], frozenset(), state)
    newly_set = frozenset(key for key in changed if before.get(key) is None)
    state["updated_at"] = now
    held.state = state
    return Applied(ended, newly_set, state)


def _apply_pending(session: Session, holding: _Holding) -> None:
    """Apply the pending observations, in order, each lead's to its row: a constant number of
    statements whatever the number of leads (a polled batch carries many leads' events, most
    one each). The receipts of new leads are inserted from the receipt alone (one INSERT for
    them all), the other leads' rows read and locked with their calendars (one SELECT on
    PostgreSQL), calendars not read yet in one more SELECT (a site that changed meanwhile).
    The rows are written at the commit (``_write_held_on_commit``)."""
    pending, holding.pending = holding.pending, []
    if not pending:
        return
    on_postgres = session.get_bind().dialect.name == "postgresql"
    by_lead: dict[str, list[_Pending]] = {}
    for item in pending:
        by_lead.setdefault(item.observation.lead_id, []).append(item)
    unknown = [lead for lead in by_lead if lead not in holding.facts]
    openers = [by_lead[lead][0] for lead in unknown if _opens_fact(by_lead[lead][0].observation)]
    opened = _insert_new_facts(session, holding, openers, on_postgres=on_postgres)
    unread = {lead: by_lead[lead] for lead in unknown if lead not in opened}
    _read_facts(session, holding, unread, on_postgres=on_postgres)
    keys: set[str | None] = set()
    for lead, items in by_lead.items():
        state = holding.facts[lead].state
        site, channel = state["site"], state["channel"]
        for item in items:
            site = item.observation.site or site
            channel = item.observation.channel or channel
            keys.add(calendar_key(site, channel))
    _read_calendars(session, holding, keys)
    for item in pending:
        lead = item.observation.lead_id
        applied = opened.pop(lead) if item is by_lead[lead][0] and lead in opened else None
        if applied is None:
            held = holding.facts[lead]
            state = _merged(held.state, item.observation)
            key = calendar_key(state["site"], state["channel"])
            if not held.calendar_known or held.calendar_key != key:
                held.calendar = holding.calendars.get(key)
                held.calendar_known, held.calendar_key = True, key
            applied = _settle(held, state, item.policy, now=item.now)
        item.done(applied)


def _insert_new_facts(
    session: Session, holding: _Holding, receipts: Sequence[_Pending], *, on_postgres: bool
) -> dict[str, Applied]:
    """The rows of new leads made from their receipts alone, inserted unless a lead has one
    already (a replay: nothing written, its row is read then), one statement: what each did."""
    if not receipts:
        return {}
    states = [_merged(_NO_FACT, item.observation) for item in receipts]
    _read_calendars(session, holding, {calendar_key(s["site"], s["channel"]) for s in states})
    made: dict[str, tuple[Applied, _Held]] = {}
    for item, state in zip(receipts, states, strict=True):
        key = calendar_key(state["site"], state["channel"])
        calendar = holding.calendars.get(key)
        ended = _measure(state, _NO_FACT, item.policy, calendar)
        newly_set = frozenset(name for name, value in state.items() if value is not None)
        state["updated_at"] = item.now
        made[state["lead_id"]] = (
            Applied(ended, newly_set, state),
            _Held(state, state, True, key, calendar),
        )
    statement = _INSERT_NEW_FACT_POSTGRES if on_postgres else _INSERT_NEW_FACT_SQLITE
    # One row: its columns with a value; several: whole rows (one parameter set's keys each).
    rows: Any = (
        _new_row(states[0])
        if len(states) == 1
        else [{name: state[name] for name in _FACT_NAMES} for state in states]
    )
    inserted = set(session.execute(statement, rows).scalars().all())
    opened: dict[str, Applied] = {}
    for lead in inserted:
        applied, holding.facts[lead] = made[lead]
        opened[lead] = applied
    return opened


def _read_facts(
    session: Session,
    holding: _Holding,
    leads: Mapping[str, Sequence[_Pending]],
    *,
    on_postgres: bool,
) -> None:
    """The leads' rows (read and locked), each with the calendar of its key once its pending
    observations are merged: one statement on PostgreSQL, one per lead on SQLite (embedded, no
    round trip). A lead without a row yet gets an empty one (inserted at the commit)."""
    if not leads:
        return
    ends = {
        lead: (
            next(
                (item.observation.site for item in reversed(items) if item.observation.site), None
            ),
            next(
                (item.observation.channel for item in reversed(items) if item.observation.channel),
                None,
            ),
        )
        for lead, items in leads.items()
    }
    rows: list[Any]
    if on_postgres:
        found = session.execute(
            _FACTS_WITH_CALENDARS_POSTGRES,
            {
                "lead_ids": list(ends),
                "sites": [site for site, _ in ends.values()],
                "channels": [channel for _, channel in ends.values()],
            },
        )
        rows = list(found.all())
    else:
        rows = []
        for lead, (site, channel) in ends.items():
            row = session.execute(
                _FACT_WITH_CALENDAR, {"lead_id": lead, "site": site, "channel": channel}
            ).first()
            if row is not None:
                rows.append(row)
    for row in rows:
        fact = dict(zip(_FACT_NAMES, row, strict=False))
        key, joined = row[_JOINED_KEY], _joined_calendar(row)
        holding.calendars[key] = joined
        holding.facts[fact["lead_id"]] = _Held(fact, fact, True, key, joined)
    for lead in leads:
        holding.facts.setdefault(lead, _Held(None, _NO_FACT))


def _read_calendars(session: Session, holding: _Holding, keys: set[str | None]) -> None:
    """The calendars of ``keys`` this transaction has not read yet, in one statement."""
    missing = sorted(key for key in keys if key is not None and key not in holding.calendars)
    if not missing:
        return
    rows = session.execute(_CALENDARS, {"calendar_ids": missing}).mappings().all()
    found = {row["calendar_id"]: _spec(row).calendar() for row in rows}
    for key in missing:
        holding.calendars[key] = found.get(key)


_HOLDING = "crm.sla.holding"


def _write_of(held: _Held) -> tuple[Any, dict[str, Any]] | None:
    """The statement (and its parameters) storing ``held.state``; None when it is stored."""
    state = held.state
    if held.stored is None:
        if state is _NO_FACT:
            return None
        held.stored = state
        return _INSERT_FACT, _new_row(state)
    changes = {key: value for key, value in state.items() if held.stored.get(key) != value}
    held.stored = state
    if not changes:
        return None
    return _UPDATE_FACT, {**changes, "fact_lead_id": state["lead_id"]}


def _holding(session: AsyncSession, *, create: bool) -> _Holding | None:
    """What this session's transaction holds for its commit (see ``SlaRepository.apply``);
    created on demand, with the hooks that write its rows before the commit and drop it all on
    a rollback."""
    holding: _Holding | None = session.info.get(_HOLDING)
    if holding is None and create:
        holding = session.info[_HOLDING] = _Holding()
        sync_session = session.sync_session
        event.listen(sync_session, "before_commit", _write_held_on_commit, once=True)
        event.listen(sync_session, "after_rollback", _drop_held, once=True)
    return holding


def _write_held_on_commit(session: Session) -> None:
    """Runs inside the commit (the async session's greenlet): the statements are sent in the
    transaction, before its COMMIT; a failure fails the commit (the unit of work rolls back).
    Several leads' updates are one UPDATE sent with a parameter set per lead (one round trip):
    their whole rows, as the rows are locked by this transaction and differ in what changed."""
    holding: _Holding = session.info.pop(_HOLDING, None) or _Holding()
    _apply_pending(session, holding)
    updates: list[tuple[_Held, dict[str, Any]]] = []
    for held in holding.facts.values():
        written = _write_of(held)
        if written is None:
            continue
        if written[0] is _UPDATE_FACT:
            updates.append((held, written[1]))
        else:
            session.execute(*written)
    if len(updates) == 1:
        session.execute(_UPDATE_FACT, updates[0][1])
    elif updates:
        session.execute(_UPDATE_FACT, [_whole_row(held.state) for held, _ in updates])


def _whole_row(state: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``_UPDATE_FACT`` setting every column of the row to ``state``."""
    row = {name: state[name] for name in _FACT_NAMES if name != "lead_id"}
    row["fact_lead_id"] = state["lead_id"]
    return row


def _drop_held(session: Session) -> None:
    session.info.pop(_HOLDING, None)


class SlaRepository(Repository):
    @property
    def on_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # -- writing ---------------------------------------------------------------------------

    async def apply(
        self, observation: Observation, policy: SlaPolicy, *, now: datetime, hold: bool = False
    ) -> Applied:
        """Merge an observation into the lead's row (earliest instant of each milestone wins:
        replays and re-deliveries change nothing). Returns the stages that ended just now and
        the columns set for the first time.

        ``hold``: the row is written when the transaction commits, once, whatever the number of
        the lead's events applied meanwhile: its first one reads (and locks) it, the next ones
        merge into the row as this transaction leaves it (``_Held``), without a statement."""
        holding = _holding(self.session, create=hold)
        if holding is not None and holding.pending:
            await self.session.run_sync(_apply_pending, holding)
        held = holding.facts.pop(observation.lead_id, None) if holding is not None else None
        if held is None:
            if _opens_fact(observation):
                inserted = await self._insert_new_fact(observation, policy, holding, now=now)
                if inserted is not None:
                    applied, held = inserted
                    if holding is not None and hold:
                        holding.facts[observation.lead_id] = held
                    return applied
            held = await self._read_fact(observation, holding)
        applied = await self._merge(held, observation, policy, holding, now=now)
        if hold:
            assert holding is not None
            holding.facts[observation.lead_id] = held
        else:
            await self._write(held)
        return applied

    async def _read_fact(self, observation: Observation, holding: _Holding | None) -> _Held:
        """The lead's row (read and locked), with the calendar of its key once the observation
        is merged: one statement."""
        found = (
            await self.session.execute(
                _FACT_WITH_CALENDAR,
                {
                    "lead_id": observation.lead_id,
                    "site": observation.site or None,
                    "channel": observation.channel or None,
                },
            )
        ).first()
        if found is None:
            return _Held(None, _NO_FACT)
        row = dict(zip(_FACT_NAMES, found, strict=False))
        key, joined = found[_JOINED_KEY], _joined_calendar(found)
        if holding is not None:
            holding.calendars[key] = joined
        return _Held(row, row, True, key, joined)

    async def _merge(
        self,
        held: _Held,
        observation: Observation,
        policy: SlaPolicy,
        holding: _Holding | None,
        *,
        now: datetime,
    ) -> Applied:
        """Merge the observation into ``held.state`` (the row as this transaction leaves it)."""
        state = _merged(held.state, observation)
        calendar_id = calendar_key(state["site"], state["channel"])
        if not held.calendar_known or held.calendar_key != calendar_id:
            held.calendar = await self._site_calendar(calendar_id, holding)
            held.calendar_known, held.calendar_key = True, calendar_id
        return _settle(held, state, policy, now=now)

    async def _write(self, held: _Held) -> None:
        written = _write_of(held)
        if written is not None:
            await self.session.execute(*written)

    def defer(
        self,
        observation: Observation,
        policy: SlaPolicy,
        *,
        now: datetime,
        done: Callable[[Applied], None],
    ) -> None:
        """Apply the observation as ``apply`` with ``hold`` does, but at the transaction's next
        write (its commit, or a read of the table), with the other pending observations: the
        transaction's leads are read (or inserted) together, not one statement each. ``done``
        is called then with what it did."""
        holding = _holding(self.session, create=True)
        assert holding is not None
        holding.pending.append(_Pending(observation, policy, now, done))

    async def write_held(self) -> None:
        """Write now the rows held for the commit (before a read of the table)."""
        holding = _holding(self.session, create=False)
        if holding is not None and holding.pending:
            await self.session.run_sync(_apply_pending, holding)
        while holding is not None and holding.facts:
            _, held = holding.facts.popitem()
            await self._write(held)

    async def _site_calendar(
        self, key: str | None, holding: _Holding | None
    ) -> BusinessCalendar | None:
        """``site_calendar``, read once per transaction that holds its rows."""
        if holding is None:
            return await self.site_calendar(key)
        if key not in holding.calendars:
            holding.calendars[key] = await self.site_calendar(key)
        return holding.calendars[key]

    async def _insert_new_fact(
        self,
        observation: Observation,
        policy: SlaPolicy,
        holding: _Holding | None,
        *,
        now: datetime,
    ) -> tuple[Applied, _Held] | None:
        """The lead's row made from this observation alone, inserted unless the lead has one
        already (then None, and nothing is written): no read before the write."""
        state = _merged(_NO_FACT, observation)
        calendar_id = calendar_key(state["site"], state["channel"])
        site_calendar = await self._site_calendar(calendar_id, holding)
        ended = _measure(state, _NO_FACT, policy, site_calendar)
        newly_set = frozenset(key for key, value in state.items() if value is not None)
        state["updated_at"] = now
        statement = _INSERT_NEW_FACT_POSTGRES if self.on_postgres else _INSERT_NEW_FACT_SQLITE
        inserted = (await self.session.execute(statement, _new_row(state))).first()
        if inserted is None:
            return None
        held = _Held(state, state, True, calendar_id, site_calendar)
        return Applied(ended, newly_set, state), held

    # -- calendars -------------------------------------------------------------------------

    async def site_calendar(self, key: str | None) -> BusinessCalendar | None:
        """The calendar of a site (or of the full-web pool), None while it is not known."""
        if key is None:
            return None
        spec = await self.calendar_spec(key)
        return spec.calendar() if spec is not None else None

    async def calendar_spec(self, key: str) -> CalendarSpec | None:
        row = (await self.session.execute(_CALENDAR, {"calendar_id": key})).mappings().first()
        return _spec(row) if row is not None else None

    async def calendars(self) -> dict[str, BusinessCalendar]:
        """Every known calendar by key (a few hundred sites at most)."""
        rows = (await self.session.execute(select(sla_calendar))).mappings().all()
        return {row["calendar_id"]: _spec(row).calendar() for row in rows}

    async def save_calendar(
        self, key: str, spec: CalendarSpec, *, changed_at: datetime, now: datetime
    ) -> bool:
        """Store a calendar unless a later one of this key is stored already. True when what
        the calendar is changed (new, or other hours, holidays or closures)."""
        holding = _holding(self.session, create=False)
        if holding is not None:
            holding.calendars.pop(key, None)
        c = sla_calendar.c
        row = (
            (
                await self.session.execute(
                    select(c.changed_at).where(c.calendar_id == key).with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is not None and row["changed_at"] > changed_at:
            return False  # an older event delivered late: the stored one is newer
        values = {
            "pool": spec.pool,
            "timezone": spec.timezone,
            "opening_hours": spec.opening_hours,
            "holiday_subdivision": spec.holiday_subdivision,
            "observe_holidays": spec.observe_holidays,
            "closures": [day.isoformat() for day in spec.closures],
            "changed_at": changed_at,
            "updated_at": now,
        }
        if row is None:
            await self.session.execute(insert(sla_calendar).values(calendar_id=key, **values))
            return True
        previous = await self.calendar_spec(key)
        await self.session.execute(update(sla_calendar).where(c.calendar_id == key).values(values))
        return previous != spec

    async def leads_on_calendar(self, key: str, *, only_provisional: bool) -> list[str]:
        """Leads measured on this calendar that must be measured again: those measured on the
        default while it was unknown and, unless ``only_provisional``, the open ones."""
        await self.write_held()
        c = sla_fact.c
        if key == FULL_WEB_POOL:
            on_calendar = c.channel == "full_web"
        else:
            on_calendar = and_(c.site == key, or_(c.channel.is_(None), c.channel != "full_web"))
        wanted: ColumnElement[bool] = c.calendar_provisional.is_(True)
        if not only_provisional:
            wanted = or_(wanted, c.closed_at.is_(None))
        query = select(c.lead_id).where(on_calendar, wanted).order_by(c.lead_id)
        return list((await self.session.execute(query)).scalars().all())

    async def get(self, lead_id: str) -> dict[str, Any] | None:
        await self.write_held()
        row = (
            (await self.session.execute(select(sla_fact).where(sla_fact.c.lead_id == lead_id)))
            .mappings()
            .first()
        )
        return dict(row) if row else None

    # -- reading ---------------------------------------------------------------------------

    async def stage_histograms(
        self,
        stage: Stage,
        filters: Filters,
        group_by: str | None,
        target_s: float | None,
        *,
        wall: bool = False,
    ) -> dict[str | None, StageHistogram]:
        """Whole minutes of the stage's business durations (or wall ones) → count, per group;
        ``late`` counts business durations past the target."""
        c = sla_fact.c
        business = c[stage.business_column]
        measured = c[stage.wall_column] if wall else business
        minute = ((measured + 59) // 60).label("m")
        late = (
            func.sum(case((business > target_s, 1), else_=0))
            if target_s is not None
            else literal(0)
        )
        query = (
            select(_group_expression(group_by), minute, func.count().label("n"), late.label("late"))
            .where(*filters.where(), measured.is_not(None))
            .group_by("g", "m")
        )
        result: dict[str | None, StageHistogram] = {}
        for group, minutes, count, late_count in (await self.session.execute(query)).all():
            entry = result.setdefault(group, StageHistogram({}, 0))
            entry.minutes[int(minutes)] = entry.minutes.get(int(minutes), 0) + int(count)
            result[group] = StageHistogram(entry.minutes, entry.late + int(late_count or 0))
        return result

    async def stage_summaries_postgres(
        self,
        filters: Filters,
        group_by: str | None,
        targets_s: dict[str, int],
        now: datetime,
    ) -> dict[str | None, dict[str, Any]]:
        """PostgreSQL: the whole summary (outcomes included) in one scan of the range, or two
        when grouped:

        - The counts (leads, outcomes, late / overdue / at risk per stage with a target): plain
          aggregates, which PostgreSQL may run in parallel workers.
        - The percentiles: exact nearest rank with ``percentile_disc`` (the first value whose
          cumulative share reaches p), a statement that reads only the key and the 16 duration
          columns, grouped on the key in the "C" collation: the narrow rows are sorted by bytes,
          not by the locale's rules, and no index on the dimension is walked in its order (a
          random heap read per row). Group order does not matter: the service sorts the keys.
        """
        c = sla_fact.c
        # The grouping sort (1 M narrow rows: about 120 MB) and the 16 value sorts in memory.
        await self.session.execute(text("SET LOCAL work_mem = '256MB'"))
        group = _group_expression(group_by)
        counts: list[Any] = [
            group,
            func.count().label("leads"),
            *_outcome_columns(),
        ]
        for stage in STAGES:
            target_s = targets_s.get(stage.name)
            if target_s is not None:
                counts.append(
                    func.sum(case((c[stage.business_column] > target_s, 1), else_=0)).label(
                        f"{stage.name}__late"
                    )
                )
                counts += self._open_columns(stage, now)
        key = _group_expression(group_by, collation="C")
        fractions = postgresql.array([literal(p, Float) for p in PERCENTILES])
        ranked: list[Any] = []
        for stage in STAGES:
            business = c[stage.business_column]
            ranked += [
                func.count(business).label(f"{stage.name}__count"),
                func.percentile_disc(fractions)
                .within_group((business + 59) // 60)
                .label(f"{stage.name}__percentiles"),
                func.percentile_disc(fractions)
                .within_group((c[stage.wall_column] + 59) // 60)
                .label(f"{stage.name}__wall_percentiles"),
            ]
        if group_by is None:  # no grouping sort: everything in one scan
            query = select(*counts, *ranked).where(*filters.where())
            row = (await self.session.execute(query)).mappings().one()
            return {"all": dict(row)} if row["leads"] else {}
        count_query = select(*counts).where(*filters.where()).group_by("g")
        rows: dict[str | None, dict[str, Any]] = {
            row["g"]: dict(row)
            for row in (await self.session.execute(count_query)).mappings().all()
        }
        percentile_query = select(key, *ranked).where(*filters.where()).group_by("g")
        for row in (await self.session.execute(percentile_query)).mappings().all():
            rows[row["g"]].update(row)
        return rows

    @staticmethod
    def _open_columns(stage: Stage, now: datetime) -> list[Any]:
        c = sla_fact.c
        running = and_(
            c[stage.start_column].is_not(None),
            c[stage.end_column].is_(None),
            c.closed_at.is_(None),
        )
        return [
            func.sum(case((and_(running, c[stage.due_column] <= now), 1), else_=0)).label(
                f"{stage.name}__overdue"
            ),
            func.sum(
                case(
                    (and_(running, c[stage.risk_column] <= now, c[stage.due_column] > now), 1),
                    else_=0,
                )
            ).label(f"{stage.name}__at_risk"),
        ]

    async def open_counts(
        self, filters: Filters, group_by: str | None, now: datetime
    ) -> dict[str | None, dict[str, int]]:
        """Per group: leads, and per stage with a deadline the open stages overdue / at risk."""
        columns: list[Any] = [_group_expression(group_by), func.count().label("leads")]
        for stage in STAGES:
            columns += self._open_columns(stage, now)
        query = select(*columns).where(*filters.where()).group_by("g")
        rows = (await self.session.execute(query)).mappings().all()
        return {
            row["g"]: {key: int(value or 0) for key, value in row.items() if key != "g"}
            for row in rows
        }

    async def open_stage_counts(self, stages: Sequence[Stage], now: datetime) -> dict[str, int]:
        """``<stage>__at_risk`` / ``<stage>__overdue`` over every open lead (the partial index
        ``ix_sla_fact_open``): what the worker's gauge reports."""
        columns: list[Any] = []
        for stage in stages:
            columns += self._open_columns(stage, now)
        if not columns:
            return {}
        query = select(*columns).where(sla_fact.c.closed_at.is_(None))
        row = (await self.session.execute(query)).mappings().one()
        return {key: int(value or 0) for key, value in row.items()}

    async def outcomes(self, filters: Filters, group_by: str | None) -> dict[str | None, Outcomes]:
        """Per group: sales, closed leads and the revenue of the priced sales."""
        query = (
            select(_group_expression(group_by), *_outcome_columns())
            .where(*filters.where())
            .group_by("g")
        )
        return {
            row["g"]: Outcomes.of_row(row)
            for row in (await self.session.execute(query)).mappings().all()
        }

    # -- daily series ----------------------------------------------------------------------

    def _local_day(self, filters: Filters) -> ColumnElement[Any]:
        """The Europe/Paris day (``YYYY-MM-DD``) a lead was received. PostgreSQL converts
        itself; SQLite has no time zones, so the UTC offsets of the range (a few segments
        between DST changes) are given to it as a CASE."""
        c = sla_fact.c
        if self.on_postgres:
            return func.to_char(func.timezone(SERIES_TIMEZONE, c.received_at), "YYYY-MM-DD")
        segments = offset_segments(filters.start, filters.end)
        *changes, (_, last) = segments
        modifier: ColumnElement[Any] = literal(f"{last:+d} seconds")
        if changes:
            modifier = case(
                *((c.received_at < until, f"{offset:+d} seconds") for until, offset in changes),
                else_=f"{last:+d} seconds",
            )
        return func.date(c.received_at, modifier)

    async def daily_totals(
        self,
        filters: Filters,
        group_by: str | None,
        targeted: Sequence[tuple[Stage, int]],
        stage: Stage,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Per local day and group: leads, sales, closed, revenue, breaches (stages with a target
        that ended past it or run past their deadline). On PostgreSQL also ``stage_count`` and
        ``stage_percentiles`` (p50, p90 of ``stage`` in whole business minutes, exact nearest
        rank with ``percentile_disc``) in the same scan; elsewhere see ``daily_histograms``."""
        c = sla_fact.c
        measured: list[Any] = []
        if self.on_postgres:
            business = c[stage.business_column]
            fractions = postgresql.array([literal(p, Float) for p in SERIES_PERCENTILES])
            measured = [
                func.count(business).label("stage_count"),
                func.percentile_disc(fractions)
                .within_group((business + 59) // 60)
                .label("stage_percentiles"),
            ]
        breaches: Any = literal(0)
        for stage, target_s in targeted:
            breached = or_(
                c[stage.business_column] > target_s,
                and_(
                    c[stage.start_column].is_not(None),
                    c[stage.end_column].is_(None),
                    c.closed_at.is_(None),
                    c[stage.due_column] <= now,
                ),
            )
            breaches = breaches + func.sum(case((breached, 1), else_=0))
        query = (
            select(
                self._local_day(filters).label("day"),
                _group_expression(group_by),
                func.count().label("leads"),
                func.count(c.won_at).label("won"),
                func.count(c.closed_at).label("closed"),
                func.sum(c.sale_price_eur).label("revenue"),
                breaches.label("breaches"),
                *measured,
            )
            .where(*filters.where())
            .group_by("day", "g")
        )
        return [dict(row) for row in (await self.session.execute(query)).mappings().all()]

    async def daily_histograms(
        self, stage: Stage, filters: Filters, group_by: str | None
    ) -> dict[tuple[str, str | None], dict[int, int]]:
        """Per local day and group: whole business minutes of the stage → count."""
        business = sla_fact.c[stage.business_column]
        query = (
            select(
                self._local_day(filters).label("day"),
                _group_expression(group_by),
                ((business + 59) // 60).label("m"),
                func.count().label("n"),
            )
            .where(*filters.where(), business.is_not(None))
            .group_by("day", "g", "m")
        )
        result: dict[tuple[str, str | None], dict[int, int]] = {}
        for day, group, minutes, count in (await self.session.execute(query)).all():
            histogram = result.setdefault((str(day), group), {})
            histogram[int(minutes)] = histogram.get(int(minutes), 0) + int(count)
        return result

    async def funnel(self, filters: Filters, group_by: Sequence[str]) -> list[dict[str, Any]]:
        c = sla_fact.c
        keys = [c[GROUP_COLUMNS[name]].label(name) for name in group_by]
        counted = [
            func.count(c[milestone_column(milestone)]).label(milestone) for milestone in FUNNEL
        ]
        query = select(*keys, *counted).where(*filters.where())
        if group_by:
            query = query.group_by(*group_by).order_by(*group_by)
        return [dict(row) for row in (await self.session.execute(query)).mappings().all()]

    async def breaches(
        self,
        stage: Stage,
        filters: Filters,
        *,
        target_s: float,
        now: datetime,
        after: tuple[datetime, str] | None,
        inclusive: bool,
        limit: int,
    ) -> list[Breach]:
        """Leads whose ``stage`` ended late or is running past its deadline, in (received_at,
        lead_id) order after the cursor."""
        c = sla_fact.c
        late = c[stage.business_column] > target_s
        overdue = and_(
            c[stage.start_column].is_not(None),
            c[stage.end_column].is_(None),
            c.closed_at.is_(None),
            c[stage.due_column] <= now,
        )
        query = select(
            c.lead_id,
            c.received_at,
            c.source,
            c.site,
            c.seller_id,
            c.operator_id,
            c[stage.start_column].label("started_at"),
            c[stage.end_column].label("ended_at"),
            c[stage.due_column].label("due_at"),
            c[stage.business_column].label("business_s"),
            c[stage.wall_column].label("wall_s"),
            c.channel,
        ).where(*filters.where(), or_(late, overdue))
        if after is not None:
            position = tuple_(c.received_at, c.lead_id)
            query = query.where(
                position >= tuple_(*after) if inclusive else position > tuple_(*after)
            )
        query = query.order_by(c.received_at, c.lead_id).limit(limit)
        return [
            Breach(stage=stage.name, **row)
            for row in (await self.session.execute(query)).mappings().all()
        ]


def _spec(row: Any) -> CalendarSpec:
    return CalendarSpec(
        pool=row["pool"],
        timezone=row["timezone"],
        opening_hours=row["opening_hours"],
        holiday_subdivision=row["holiday_subdivision"],
        observe_holidays=bool(row["observe_holidays"]),
        closures=tuple(sorted(date.fromisoformat(day) for day in row["closures"])),
    )
