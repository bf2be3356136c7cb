"""The contact schedule of a lead: when its next contact is due, and from when the queue offers it.

Every due time comes from here, in the call centre's business time (``Policy.calendar``):

- at receipt (and after a reopening or a cancelled call-back): due ``first_contact_minutes``
  business minutes later, in the queue at once;
- after an attempt: the retry ladder (unanswered: 30 min, 2 h, one call-centre day… by default)
  or the follow-up rule (the prospect was reached, refused or the number was wrong, and the lead
  is still open), then moved to the first instant when the call centre is open and, when the next
  contact is a call, the legal rules allow calling this consumer (their time zone, holidays, the
  call limit, a refusal's block). The lead leaves the queue until then;
- a call-back the prospect asked for: due at its time, out of the queue until then, and ranked
  before every ordinary lead once its time came.

"Overdue" is one computation, ``QueuedLead.is_overdue(now)`` (models.py: the same predicate in
Python and SQL): an open lead whose ``due_at`` is before ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from qualify.models import CALLBACK_RANK, ORDINARY_RANK, QueuedLead
from qualify.policy import Policy
from shared.business_time import BusinessCalendar
from shared.contact_rules import CallingRules, allowed, rules_for_phone
from shared.events.payloads import AttemptOutcome

UNANSWERED: frozenset[AttemptOutcome] = frozenset({"no_answer", "voicemail"})
# Outcomes after which the next contact cannot be a call (the number is wrong, or the consumer
# refused calls): only the call centre's hours apply to it.
NOT_BY_PHONE: frozenset[AttemptOutcome] = frozenset({"wrong_number", "refused"})
# Calendars that never overlap would loop forever: give up after this many hops.
_MAX_HOPS = 64


@dataclass(frozen=True)
class NextContact:
    due_at: datetime
    available_at: datetime | None  # None: in the queue at once
    rank: int = ORDINARY_RANK


def set_next_contact(lead: QueuedLead, next_contact: NextContact) -> None:
    lead.due_at = next_contact.due_at
    lead.available_at = next_contact.available_at
    lead.queue_rank = next_contact.rank


def first_contact(policy: Policy, source: str, start: datetime) -> NextContact:
    """Due ``first_contact_minutes`` (per source) business minutes after ``start``."""
    return NextContact(due_at=policy.due_at(source, start), available_at=None)


def callable_from(
    moment: datetime,
    *,
    centre: BusinessCalendar,
    rules: CallingRules | None,
    calls: Sequence[datetime] = (),
    refusals: Sequence[datetime] = (),
) -> datetime:
    """The first instant at or after ``moment`` when the call centre is open and, with ``rules``,
    a call to the consumer is allowed (hours in their zone, holidays, call limit, refusal). A
    consumer who refused calls for good gets the call centre's next opening (another channel)."""
    candidate = centre.next_open(moment)
    for _ in range(_MAX_HOPS):
        if rules is None:
            return candidate
        decision = allowed(candidate, rules=rules, previous_calls=calls, refusals=refusals)
        if decision.allowed or decision.next_allowed_at is None:
            return candidate
        if decision.next_allowed_at <= candidate:  # pragma: no cover - the rules always move on
            return candidate
        following = centre.next_open(decision.next_allowed_at)
        if following == candidate:  # pragma: no cover - idem
            return candidate
        candidate = following
    return candidate


def after_attempt(
    policy: Policy,
    lead: QueuedLead,
    outcome: AttemptOutcome,
    attempted_at: datetime,
    *,
    calls: Sequence[datetime] = (),
    refusals: Sequence[datetime] = (),
) -> NextContact:
    """The next contact after an attempt (``lead.unanswered_count`` already counts it)."""
    settings = policy.settings
    if outcome in UNANSWERED:
        ladder = settings.retry_ladder_business_minutes
        step = ladder[min(max(lead.unanswered_count, 1), len(ladder)) - 1]
    else:
        step = settings.followup_after_reached_business_minutes
    start = policy.calendar.add_business_minutes(attempted_at, step)
    by_phone = lead.phone is not None and outcome not in NOT_BY_PHONE
    at = callable_from(
        start,
        centre=policy.calendar,
        rules=rules_for_phone(policy.calling, lead.phone) if by_phone else None,
        calls=calls,
        refusals=refusals,
    )
    return NextContact(due_at=at, available_at=at)


def callback(at: datetime) -> NextContact:
    """A call-back: out of the queue until ``at``, then due at once and served first."""
    return NextContact(due_at=at, available_at=at, rank=CALLBACK_RANK)


def callback_window(policy: Policy, now: datetime) -> tuple[datetime, datetime]:
    """The instants a call-back may be set at: after now, at most ``callback_max_days_ahead``."""
    return now, now + timedelta(days=policy.settings.callback_max_days_ahead)
