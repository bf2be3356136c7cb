"""The kinds of durable timers of the contact schedule."""

from __future__ import annotations

from typing import Literal

TimerKind = Literal["accept_deadline", "first_contact", "followup", "reroute"]
ACCEPT_DEADLINE: TimerKind = "accept_deadline"  # an offer not accepted in time expires
FIRST_CONTACT: TimerKind = "first_contact"  # an accepted lead not contacted in time escalates
FOLLOWUP: TimerKind = "followup"  # J+n after the first contact
REROUTE: TimerKind = "reroute"  # an unassigned lead is offered again
KINDS: tuple[TimerKind, ...] = (ACCEPT_DEADLINE, FIRST_CONTACT, FOLLOWUP, REROUTE)

# What a fired timer did (stored on its row, counted in ``dispatch_timers_fired_total``);
# ``obsolete``: the lead or assignment moved on since the timer was set.
TimerOutcome = Literal[
    "offered",
    "still_unassigned",
    "expired",
    "escalated",
    "followup_sent",
    "obsolete",
    "unknown_kind",
    "cancelled",
]
